terraform {
  # Terraform >= 1.6 or OpenTofu >= 1.6 (both read this file).
  required_version = ">= 1.6.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }

  # Remote state is optional: without a backend block, state stays local (terraform.tfstate).
  # For a team, copy backend.tf.example to backend.tf and give the settings at init time:
  #   terraform init -backend-config=backend.hcl
  # (see backend.hcl.example; backend.tf and backend.hcl are git-ignored).
}
