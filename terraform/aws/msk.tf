# Amazon MSK: 2 brokers in two private subnets. The operator (topics) and booking-service
# (producer) use kafka-python with PLAINTEXT, as in examples/production.yaml (port 9092), so client
# authentication is "unauthenticated" and access is limited by the security group to the EKS
# cluster's security group (the managed nodes use it). TLS (9094) is offered beside it, and
# broker-to-broker traffic is always encrypted. No IAM permissions are needed to use the cluster.

resource "aws_security_group" "msk" {
  name        = "${local.cluster_name}-msk"
  description = "MSK brokers: Kafka from the EKS cluster only"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${local.cluster_name}-msk" }
}

resource "aws_vpc_security_group_ingress_rule" "msk_from_eks" {
  for_each = { plaintext = 9092, tls = 9094 }

  security_group_id            = aws_security_group.msk.id
  description                  = "Kafka ${each.key} from EKS"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

resource "aws_msk_configuration" "this" {
  name           = "${local.cluster_name}-kafka"
  kafka_versions = [var.msk_kafka_version]

  # Topics are made by the operator (spec.kafka.topics), never implicitly by a client.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=2
    min.insync.replicas=1
    num.partitions=3
    log.retention.hours=168
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "msk" {
  name              = "/aws/msk/${local.cluster_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_msk_cluster" "this" {
  cluster_name           = local.cluster_name
  kafka_version          = var.msk_kafka_version
  number_of_broker_nodes = var.msk_broker_count

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = slice(aws_subnet.private[*].id, 0, 2)
    security_groups = [aws_security_group.msk.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_size
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = true
  }

  encryption_info {
    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk.name
      }
    }
  }
}
