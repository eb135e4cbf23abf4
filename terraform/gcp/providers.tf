provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge(
    {
      "app-kubernetes-io-part-of" = "ticketplatform"
      "managed-by"                = "terraform"
    },
    var.labels,
  )
}

locals {
  network_tag      = "${var.name}-dataproc"
  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${var.project_id}-${var.name}-analytics")
  job_file_object  = "analytics_job.py"
  job_file_source  = "${path.module}/../../flink/analytics_job.py"
}

# The APIs this stack uses (left enabled on destroy: other things in the project may use them).
resource "google_project_service" "this" {
  for_each = toset([
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}
