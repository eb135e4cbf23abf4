# ---------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------
variable "region" {
  description = "AWS region for every resource of this stack."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix of every resource (lowercase letters, digits and hyphens)."
  type        = string
  default     = "ticketplatform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...); part of resource names and tags."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}$", var.environment))
    error_message = "environment must be 2-11 characters of lowercase letters, digits and hyphens."
  }
}

variable "tags" {
  description = "Extra tags added to every resource (through the provider's default_tags)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------
variable "vpc_cidr" {
  description = "CIDR block of the VPC (a /16: public /24s, private /20s and database /24s are carved from it)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a valid CIDR block of size /16 or larger."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread the public, private and database subnets over (2 or 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3 (MSK's 2 brokers and RDS Multi-AZ need at least 2)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives an AZ outage)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# EKS
# ---------------------------------------------------------------------------------------------
variable "kubernetes_version" {
  description = "Kubernetes version of the EKS control plane and its managed node group."
  type        = string
  default     = "1.30"
}

variable "cluster_endpoint_public_access" {
  description = "Expose the EKS API endpoint publicly (restricted to cluster_endpoint_public_access_cidrs); the private endpoint is always on."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public EKS API endpoint. Narrow this to your office/CI ranges."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_capacity_type" {
  description = "Capacity type of the managed node group: ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  description = "Minimum number of nodes in the managed node group."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Initial number of nodes in the managed node group (later changes by an autoscaler are ignored by Terraform)."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum number of nodes in the managed node group."
  type        = number
  default     = 6
}

variable "node_disk_size" {
  description = "Root volume size of each node, in GiB."
  type        = number
  default     = 50
}

variable "operator_namespace" {
  description = "Namespace the TicketPlatform operator runs in (its IRSA trust policy names it)."
  type        = string
  default     = "ticketplatform-system"
}

variable "operator_service_account" {
  description = "ServiceAccount of the operator (operator/deploy uses ticketplatform-operator)."
  type        = string
  default     = "ticketplatform-operator"
}

variable "app_namespace" {
  description = "Namespace of the TicketPlatform object and its services (the IRSA trust policies name it)."
  type        = string
  default     = "ticketing"
}

# ---------------------------------------------------------------------------------------------
# MSK (Kafka)
# ---------------------------------------------------------------------------------------------
variable "msk_kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.6.0"
}

variable "msk_broker_count" {
  description = "Number of MSK brokers; MSK needs a multiple of the client subnets used (2)."
  type        = number
  default     = 2

  validation {
    condition     = var.msk_broker_count >= 2 && var.msk_broker_count % 2 == 0
    error_message = "msk_broker_count must be a positive multiple of 2 (the brokers are spread over 2 subnets)."
  }
}

variable "msk_instance_type" {
  description = "Instance type of the MSK brokers."
  type        = string
  default     = "kafka.m5.large"
}

variable "msk_volume_size" {
  description = "EBS volume size of each MSK broker, in GiB."
  type        = number
  default     = 100
}

# ---------------------------------------------------------------------------------------------
# RDS PostgreSQL
# ---------------------------------------------------------------------------------------------
variable "db_engine_version" {
  description = "PostgreSQL engine version of the RDS instance; a major version (\"16\") lets RDS pick and upgrade the minor."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "Instance class of the RDS instance."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial storage of the RDS instance, in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Upper bound for RDS storage autoscaling, in GiB."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Name of the database the services use (DESIGN.md: ticketdb)."
  type        = string
  default     = "ticketdb"
}

variable "db_master_username" {
  description = "Master user name of the RDS instance. Its password is generated and kept by RDS in Secrets Manager (manage_master_user_password): it is in no file and not in Terraform state."
  type        = string
  default     = "ticketadmin"
}

variable "db_multi_az" {
  description = "Run the RDS instance Multi-AZ (a standby in a second zone)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the RDS instance and the DynamoDB table (set to false and apply before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "db_iam_auth" {
  description = "Enable IAM database authentication and give booking-service and event-catalog rds-db:connect as db_iam_user. False: they authenticate with the password in their Secret, and their roles get no AWS permission."
  type        = bool
  default     = true
}

variable "db_iam_user" {
  description = "Database user that booking-service and event-catalog connect as with IAM authentication (create it with `GRANT rds_iam TO <user>`)."
  type        = string
  default     = "ticketapp"
}

# ---------------------------------------------------------------------------------------------
# DynamoDB, S3, Lambda
# ---------------------------------------------------------------------------------------------
variable "users_table_name" {
  description = "Name of the DynamoDB users table (the user service's USERS_TABLE; DESIGN.md: ticket-booking-users)."
  type        = string
  default     = "ticket-booking-users"
}

variable "uploads_bucket_name" {
  description = "Name of the S3 bucket for ID-proof uploads and generated tickets. Null: <name>-<environment>-uploads-<account id>-<region>, globally unique."
  type        = string
  default     = null
}

variable "uploads_prefix" {
  description = "Key prefix the frontend uploads to (uploads/<user_id>/...); only objects under it trigger the ticket generator. Must not be tickets/ or empty (an S3 filter cannot exclude a prefix, only include one)."
  type        = string
  default     = "uploads/"

  validation {
    condition     = var.uploads_prefix != "" && !startswith(var.uploads_prefix, "tickets/") && endswith(var.uploads_prefix, "/")
    error_message = "uploads_prefix must be a non-empty folder prefix ending in / and must not be under tickets/ (the generator's own output)."
  }
}

variable "uploads_force_destroy" {
  description = "Let `terraform destroy` delete the uploads bucket even when it holds objects."
  type        = bool
  default     = false
}

variable "lambda_timeout" {
  description = "Timeout of the ticket generator Lambda, in seconds."
  type        = number
  default     = 30
}

variable "lambda_memory" {
  description = "Memory of the ticket generator Lambda, in MiB."
  type        = number
  default     = 256
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (Lambda, EKS control plane, MSK), in days."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------------------------------------
# ECR
# ---------------------------------------------------------------------------------------------
variable "ecr_namespace" {
  description = "Path prefix of the ECR repositories (<namespace>/frontend, ...), as in examples/production.yaml."
  type        = string
  default     = "ticketplatform"
}

variable "ecr_repositories" {
  description = "Images that get an ECR repository: the operator and the four services."
  type        = list(string)
  default     = ["operator", "frontend", "user-service", "event-catalog", "booking-service"]
}

variable "ecr_image_tag_mutability" {
  description = "IMMUTABLE (a tag, once pushed, always means the same image) or MUTABLE."
  type        = string
  default     = "IMMUTABLE"

  validation {
    condition     = contains(["IMMUTABLE", "MUTABLE"], var.ecr_image_tag_mutability)
    error_message = "ecr_image_tag_mutability must be IMMUTABLE or MUTABLE."
  }
}

variable "ecr_keep_images" {
  description = "How many images each ECR repository keeps (older ones expire)."
  type        = number
  default     = 50
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete ECR repositories that still hold images."
  type        = bool
  default     = false
}
