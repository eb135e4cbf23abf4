# spec.analytics.dataproc of a TicketPlatform (examples/production.yaml) takes exactly these five.

output "projectId" {
  description = "spec.analytics.dataproc.projectId"
  value       = var.project_id
}

output "region" {
  description = "spec.analytics.dataproc.region"
  value       = google_dataproc_cluster.flink.region
}

output "cluster" {
  description = "spec.analytics.dataproc.cluster"
  value       = google_dataproc_cluster.flink.name
}

output "jobFileUri" {
  description = "spec.analytics.dataproc.jobFileUri (uploaded by this stack when upload_job_file is true)."
  value       = "gs://${google_storage_bucket.artifacts.name}/${local.job_file_object}"
}

output "connectorJarUri" {
  description = "spec.analytics.dataproc.connectorJarUri (uploaded by this stack when connector_jar_path is set)."
  value       = "gs://${google_storage_bucket.artifacts.name}/${var.connector_jar_object}"
}

output "dataproc_spec" {
  description = "The whole spec.analytics.dataproc block, ready to paste (terraform output -json dataproc_spec)."
  value = {
    projectId       = var.project_id
    region          = google_dataproc_cluster.flink.region
    cluster         = google_dataproc_cluster.flink.name
    jobFileUri      = "gs://${google_storage_bucket.artifacts.name}/${local.job_file_object}"
    connectorJarUri = "gs://${google_storage_bucket.artifacts.name}/${var.connector_jar_object}"
  }
}

output "artifacts_bucket" {
  description = "GCS bucket for the job file, connector jar, checkpoints and Dataproc staging."
  value       = google_storage_bucket.artifacts.name
}

output "dataproc_service_account" {
  description = "Service account the cluster VMs run as."
  value       = google_service_account.dataproc.email
}

output "operator_service_account" {
  description = "Service account the operator submits jobs as (give the operator credentials for it; see terraform/README.md)."
  value       = google_service_account.operator.email
}

output "network" {
  description = "VPC network of the cluster."
  value       = google_compute_network.this.name
}

output "subnetwork" {
  description = "Subnetwork of the cluster."
  value       = google_compute_subnetwork.dataproc.name
}
