provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        "app.kubernetes.io/part-of"  = "ticketplatform"
        "ticketplatform/environment" = var.environment
        "managed-by"                 = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  cluster_name = "${var.name}-${var.environment}"
}
