terraform {
  # Terraform >= 1.6 or OpenTofu >= 1.6 (both read this file).
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # Remote state is optional: without a backend block, state stays local (terraform.tfstate).
  # For a team, copy backend.tf.example to backend.tf and give the settings at init time:
  #   terraform init -backend-config=backend.hcl
  # (see backend.hcl.example; backend.tf and backend.hcl are git-ignored).
}
