# The uploads bucket and the ticket generator Lambda (lambda/ticket_generator/).
#
# The frontend writes ID proofs to uploads/<user_id>/<id>-<file>; the Lambda writes receipts to
# tickets/<name>_TICKET.txt in the same bucket. An S3 notification filter can only *include* a
# prefix/suffix, never exclude one, so the trigger fires on the uploads prefix (var.uploads_prefix,
# "uploads/") and therefore never on tickets/. The handler also skips tickets/ keys on its own, so
# even a notification widened by hand cannot make it loop.

locals {
  uploads_bucket = coalesce(var.uploads_bucket_name, "${local.cluster_name}-uploads-${local.account_id}-${var.region}")
  lambda_name    = "${local.cluster_name}-ticket-generator"
  lambda_src     = "${path.module}/../../lambda/ticket_generator"
  # Every module of the package except the local-stack invoker (which needs SQS, not Lambda).
  lambda_files   = setsubtract(fileset(local.lambda_src, "*.py"), ["local_invoker.py"])
  tickets_prefix = "tickets/"
}

resource "aws_s3_bucket" "uploads" {
  bucket        = local.uploads_bucket
  force_destroy = var.uploads_force_destroy

  lifecycle {
    precondition {
      condition     = length(local.uploads_bucket) <= 63
      error_message = "The generated bucket name is longer than 63 characters: set uploads_bucket_name."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "uploads_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  policy = data.aws_iam_policy_document.uploads_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.uploads]
}

# --- the function ---------------------------------------------------------------------------
# The zip's root holds the package folder, so the handler is ticket_generator.handler.handler
# (boto3 comes with the Lambda runtime).
data "archive_file" "ticket_generator" {
  type        = "zip"
  output_path = "${path.module}/.build/ticket_generator.zip"

  dynamic "source" {
    for_each = local.lambda_files
    content {
      content  = file("${local.lambda_src}/${source.value}")
      filename = "ticket_generator/${source.value}"
    }
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ticket_generator" {
  name               = "${local.lambda_name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_cloudwatch_log_group" "ticket_generator" {
  name              = "/aws/lambda/${local.lambda_name}"
  retention_in_days = var.log_retention_days
}

# Least privilege: read (and head) uploads, write receipts under tickets/, write its own logs.
data "aws_iam_policy_document" "ticket_generator" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/${var.uploads_prefix}*"]
  }
  statement {
    sid       = "WriteTickets"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.uploads.arn}/${local.tickets_prefix}*"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ticket_generator.arn}:*"]
  }
}

resource "aws_iam_role_policy" "ticket_generator" {
  name   = "ticket-generator"
  role   = aws_iam_role.ticket_generator.id
  policy = data.aws_iam_policy_document.ticket_generator.json
}

resource "aws_lambda_function" "ticket_generator" {
  function_name    = local.lambda_name
  description      = "Turns an ID proof uploaded under ${var.uploads_prefix} into a ticket receipt under tickets/"
  role             = aws_iam_role.ticket_generator.arn
  runtime          = "python3.11"
  handler          = "ticket_generator.handler.handler"
  filename         = data.archive_file.ticket_generator.output_path
  source_code_hash = data.archive_file.ticket_generator.output_base64sha256
  timeout          = var.lambda_timeout
  memory_size      = var.lambda_memory

  environment {
    variables = {
      TICKETS_BUCKET = aws_s3_bucket.uploads.id
    }
  }

  depends_on = [
    aws_iam_role_policy.ticket_generator,
    aws_cloudwatch_log_group.ticket_generator,
  ]
}

# S3 invokes the function asynchronously; the handler raises on retryable failures, and a
# retried event rewrites the same receipt (the ticket id is derived from the event).
resource "aws_lambda_function_event_invoke_config" "ticket_generator" {
  function_name                = aws_lambda_function.ticket_generator.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_lambda_permission" "s3_invoke" {
  statement_id   = "AllowS3Invoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.ticket_generator.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.uploads.arn
  source_account = local.account_id
}

# ObjectCreated on uploads/ only: tickets/ (the function's output) never triggers it.
resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  lambda_function {
    id                  = "ticket-generator"
    lambda_function_arn = aws_lambda_function.ticket_generator.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.uploads_prefix
  }

  depends_on = [aws_lambda_permission.s3_invoke]
}
