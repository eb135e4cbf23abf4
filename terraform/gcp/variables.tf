variable "project_id" {
  description = "Google Cloud project for the analytics stack (spec.analytics.dataproc.projectId). No default: it names your project."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the network, bucket and Dataproc cluster (spec.analytics.dataproc.region)."
  type        = string
  default     = "us-central1"
}

variable "zone" {
  description = "Zone of the Dataproc cluster's VMs; null lets Dataproc Auto Zone Placement choose one in the region."
  type        = string
  default     = null
}

variable "name" {
  description = "Name prefix of the network, firewall rules, service accounts and bucket (lowercase letters, digits, hyphens)."
  type        = string
  default     = "ticketplatform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- network --------------------------------------------------------------------------------
variable "subnet_cidr" {
  description = "Primary CIDR range of the Dataproc subnet."
  type        = string
  default     = "10.60.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be a valid CIDR block."
  }
}

variable "allow_iap_ssh" {
  description = "Allow SSH to the cluster VMs through Identity-Aware Proxy (35.235.240.0/20) only; no other ingress from outside the subnet."
  type        = bool
  default     = true
}

variable "enable_nat" {
  description = "Cloud NAT for the VMs (they have internal IPs only): needed for pip packages and to reach Kafka outside Google Cloud."
  type        = bool
  default     = true
}

# --- storage --------------------------------------------------------------------------------
variable "artifacts_bucket_name" {
  description = "GCS bucket for the job file, the connector jar, Flink checkpoints and Dataproc staging. Null: <project_id>-<name>-analytics."
  type        = string
  default     = null
}

variable "artifacts_force_destroy" {
  description = "Let `terraform destroy` delete the artifacts bucket even when it holds objects (checkpoints)."
  type        = bool
  default     = false
}

variable "upload_job_file" {
  description = "Upload flink/analytics_job.py to gs://<bucket>/analytics_job.py (the jobFileUri output)."
  type        = bool
  default     = true
}

variable "connector_jar_path" {
  description = "Local path of the Flink Kafka SQL connector jar to upload (it must match the image's Flink version). Null: upload it yourself to connector_jar_object."
  type        = string
  default     = null
}

variable "connector_jar_object" {
  description = "Object name of the Kafka connector jar in the bucket (the connectorJarUri output)."
  type        = string
  default     = "jars/flink-sql-connector-kafka.jar"

  validation {
    condition     = endswith(var.connector_jar_object, ".jar")
    error_message = "connector_jar_object must end in .jar (spec.analytics.dataproc.connectorJarUri requires it)."
  }
}

# --- Dataproc -------------------------------------------------------------------------------
variable "cluster_name" {
  description = "Name of the Dataproc cluster (spec.analytics.dataproc.cluster)."
  type        = string
  default     = "ticketplatform-flink"
}

variable "image_version" {
  description = "Dataproc image version (2.2 or newer); it decides the Flink version of the FLINK component."
  type        = string
  default     = "2.2-debian12"

  validation {
    condition     = can(regex("^2\\.([2-9]|[1-9][0-9])(\\.|-|$)", var.image_version))
    error_message = "image_version must be 2.2 or newer (e.g. 2.2-debian12)."
  }
}

variable "master_machine_type" {
  description = "Machine type of the Dataproc master (Flink JobManager / YARN ResourceManager)."
  type        = string
  default     = "n2-standard-4"
}

variable "worker_machine_type" {
  description = "Machine type of the Dataproc workers (Flink TaskManagers)."
  type        = string
  default     = "n2-standard-4"
}

variable "worker_count" {
  description = "Number of primary Dataproc workers."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_count >= 2
    error_message = "A standard Dataproc cluster needs at least 2 primary workers."
  }
}

variable "boot_disk_size_gb" {
  description = "Boot disk size of every cluster VM, in GB."
  type        = number
  default     = 100
}

variable "task_slots" {
  description = "Flink task slots per TaskManager (flink:taskmanager.numberOfTaskSlots)."
  type        = number
  default     = 2
}

variable "pip_packages" {
  description = "pip packages installed on every node at creation (dataproc:pip.packages), e.g. [\"apache-flink==<the image's Flink version>\"] for the PyFlink driver. Empty: none."
  type        = list(string)
  default     = []
}
