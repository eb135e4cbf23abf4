# Analytics on Google Cloud: a private network, a least-privilege service account, a GCS bucket
# for the job's artifacts and checkpoints, and a Dataproc cluster with the FLINK component. The
# operator submits the job (flink/analytics_job.py) to this cluster (spec.analytics.engine: dataproc).

# --- network --------------------------------------------------------------------------------
resource "google_compute_network" "this" {
  name                    = "${var.name}-analytics"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.this]
}

resource "google_compute_subnetwork" "dataproc" {
  name                     = "${var.name}-dataproc"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true # GCS and Google APIs without external IPs

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
  }
}

# Dataproc nodes must reach each other on all ports; nothing else may come in, except SSH through
# Identity-Aware Proxy when allow_iap_ssh is on (the implied deny-all ingress covers the rest).
resource "google_compute_firewall" "dataproc_internal" {
  name          = "${var.name}-dataproc-internal"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = [var.subnet_cidr]
  target_tags   = [local.network_tag]

  allow {
    protocol = "tcp"
    ports    = ["0-65535"]
  }
  allow {
    protocol = "udp"
    ports    = ["0-65535"]
  }
  allow {
    protocol = "icmp"
  }
}

resource "google_compute_firewall" "iap_ssh" {
  count = var.allow_iap_ssh ? 1 : 0

  name          = "${var.name}-dataproc-iap-ssh"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"] # Google's IAP TCP forwarding range
  target_tags   = [local.network_tag]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_router" "this" {
  count = var.enable_nat ? 1 : 0

  name    = "${var.name}-analytics"
  network = google_compute_network.this.id
  region  = var.region
}

resource "google_compute_router_nat" "this" {
  count = var.enable_nat ? 1 : 0

  name                               = "${var.name}-analytics"
  router                             = google_compute_router.this[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.dataproc.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }
}

# --- service accounts -----------------------------------------------------------------------
# The cluster's VMs run as this account: Dataproc worker, plus object access on the artifacts
# bucket only (read the job file and jar, write checkpoints and staging files).
resource "google_service_account" "dataproc" {
  account_id   = "${var.name}-dataproc"
  display_name = "TicketPlatform Dataproc (Flink) VMs"

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "dataproc_worker" {
  project = var.project_id
  role    = "roles/dataproc.worker"
  member  = "serviceAccount:${google_service_account.dataproc.email}"
}

resource "google_storage_bucket_iam_member" "dataproc_objects" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.dataproc.email}"
}

# The operator's identity: it submits, reads and cancels jobs on the cluster, nothing else.
# Its credentials are not made here (no key in state or files): see terraform/README.md.
resource "google_project_iam_custom_role" "job_submitter" {
  role_id     = "${replace(var.name, "-", "_")}_analytics_job_submitter"
  title       = "TicketPlatform analytics job submitter"
  description = "Submit, read and cancel Dataproc jobs (the TicketPlatform operator's analytics engine)."
  permissions = [
    "dataproc.clusters.get",
    "dataproc.clusters.use",
    "dataproc.jobs.cancel",
    "dataproc.jobs.create",
    "dataproc.jobs.get",
  ]
}

resource "google_service_account" "operator" {
  account_id   = "${var.name}-operator"
  display_name = "TicketPlatform operator (Dataproc job submission)"

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "operator_job_submitter" {
  project = var.project_id
  role    = google_project_iam_custom_role.job_submitter.name
  member  = "serviceAccount:${google_service_account.operator.email}"
}

# --- storage --------------------------------------------------------------------------------
resource "google_storage_bucket" "artifacts" {
  name                        = local.artifacts_bucket
  location                    = var.region
  force_destroy               = var.artifacts_force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  # Old checkpoint versions are only clutter after a week.
  lifecycle_rule {
    condition {
      age                = 7
      with_state         = "ARCHIVED"
      matches_prefix     = ["checkpoints/"]
      num_newer_versions = 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket_object" "job_file" {
  count = var.upload_job_file ? 1 : 0

  bucket       = google_storage_bucket.artifacts.name
  name         = local.job_file_object
  source       = local.job_file_source
  content_type = "text/x-python"
}

resource "google_storage_bucket_object" "connector_jar" {
  count = var.connector_jar_path == null ? 0 : 1

  bucket       = google_storage_bucket.artifacts.name
  name         = var.connector_jar_object
  source       = var.connector_jar_path
  content_type = "application/java-archive"
}

# --- Dataproc cluster with Flink ------------------------------------------------------------
resource "google_dataproc_cluster" "flink" {
  name   = var.cluster_name
  region = var.region

  graceful_decommission_timeout = "120s"

  cluster_config {
    staging_bucket = google_storage_bucket.artifacts.name
    temp_bucket    = google_storage_bucket.artifacts.name

    gce_cluster_config {
      zone                   = var.zone
      subnetwork             = google_compute_subnetwork.dataproc.id
      internal_ip_only       = true
      service_account        = google_service_account.dataproc.email
      service_account_scopes = ["cloud-platform"]
      tags                   = [local.network_tag]

      shielded_instance_config {
        enable_secure_boot          = true
        enable_vtpm                 = true
        enable_integrity_monitoring = true
      }
    }

    # Flink HA is not supported on 3-master clusters: one master, as Google recommends.
    master_config {
      num_instances = 1
      machine_type  = var.master_machine_type
      disk_config {
        boot_disk_type    = "pd-balanced"
        boot_disk_size_gb = var.boot_disk_size_gb
      }
    }

    worker_config {
      num_instances = var.worker_count
      machine_type  = var.worker_machine_type
      disk_config {
        boot_disk_type    = "pd-balanced"
        boot_disk_size_gb = var.boot_disk_size_gb
      }
    }

    software_config {
      image_version       = var.image_version
      optional_components = ["FLINK"]
      override_properties = merge(
        { "flink:taskmanager.numberOfTaskSlots" = tostring(var.task_slots) },
        length(var.pip_packages) > 0 ? { "dataproc:pip.packages" = join(",", var.pip_packages) } : {},
      )
    }

    # Component Gateway: the Flink and YARN web UIs through the Cloud console, no open ports.
    endpoint_config {
      enable_http_port_access = true
    }
  }

  depends_on = [
    google_project_iam_member.dataproc_worker,
    google_storage_bucket_iam_member.dataproc_objects,
    google_compute_firewall.dataproc_internal,
    google_compute_router_nat.this,
  ]
}
