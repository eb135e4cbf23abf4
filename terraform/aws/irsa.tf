# IAM roles for service accounts (IRSA): one role per workload, trusted only by that workload's
# Kubernetes ServiceAccount (namespace + name) through the cluster's OIDC provider, each with only
# what its code calls:
#
#   operator         no AWS permission: it talks to the Kubernetes API, to MSK over Kafka
#                    (PLAINTEXT, no IAM auth) and to Dataproc with GCP credentials. The role
#                    exists so the operator has an AWS identity to grow into (e.g. MSK IAM auth).
#   frontend         s3:PutObject under uploads/, s3:GetObject under uploads/ and tickets/,
#                    s3:ListBucket on the bucket (HeadBucket and the listings).
#   user-service     DescribeTable, GetItem, PutItem, ConditionCheckItem on the users table only
#                    (registration is a TransactWriteItems of two conditional Puts).
#   event-catalog,   rds-db:connect as var.db_iam_user when db_iam_auth is on; otherwise nothing
#   booking-service  (they use the DATABASE_URL from their Secret).
#
# Annotate each ServiceAccount with eks.amazonaws.com/role-arn = the matching irsa_role_arns
# output (see terraform/README.md).

locals {
  irsa = {
    "operator"        = { namespace = var.operator_namespace, service_account = var.operator_service_account }
    "frontend"        = { namespace = var.app_namespace, service_account = "frontend" }
    "user-service"    = { namespace = var.app_namespace, service_account = "user-service" }
    "event-catalog"   = { namespace = var.app_namespace, service_account = "event-catalog" }
    "booking-service" = { namespace = var.app_namespace, service_account = "booking-service" }
  }
  db_iam_services = var.db_iam_auth ? toset(["event-catalog", "booking-service"]) : toset([])
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa

  name               = "${local.cluster_name}-${each.key}"
  description        = "IRSA role of ${each.value.namespace}/${each.value.service_account}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

# --- user-service: the users table, nothing else ----------------------------------------------
data "aws_iam_policy_document" "user_service" {
  statement {
    sid = "UsersTable"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = [aws_dynamodb_table.users.arn]
  }
}

resource "aws_iam_role_policy" "user_service" {
  name   = "users-table"
  role   = aws_iam_role.irsa["user-service"].id
  policy = data.aws_iam_policy_document.user_service.json
}

# --- frontend: uploads and tickets in the bucket ---------------------------------------------
data "aws_iam_policy_document" "frontend" {
  statement {
    sid       = "ListBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.uploads.arn]
  }
  statement {
    sid       = "PutUploads"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/${var.uploads_prefix}*"]
  }
  statement {
    sid     = "ReadUploadsAndTickets"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.uploads.arn}/${var.uploads_prefix}*",
      "${aws_s3_bucket.uploads.arn}/${local.tickets_prefix}*",
    ]
  }
}

resource "aws_iam_role_policy" "frontend" {
  name   = "uploads-bucket"
  role   = aws_iam_role.irsa["frontend"].id
  policy = data.aws_iam_policy_document.frontend.json
}

# --- event-catalog, booking-service: IAM database authentication (optional) -------------------
data "aws_iam_policy_document" "db_connect" {
  statement {
    sid     = "RdsIamConnect"
    actions = ["rds-db:connect"]
    resources = [
      "arn:${local.partition}:rds-db:${var.region}:${local.account_id}:dbuser:${aws_db_instance.this.resource_id}/${var.db_iam_user}",
    ]
  }
}

resource "aws_iam_role_policy" "db_connect" {
  for_each = local.db_iam_services

  name   = "rds-iam-connect"
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.db_connect.json
}
