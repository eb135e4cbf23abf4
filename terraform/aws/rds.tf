# RDS PostgreSQL 16 in the database subnets, reachable only from the EKS cluster's security group.
# The master password is generated and rotated by RDS and kept in Secrets Manager
# (manage_master_user_password): it is in no file, no variable and not in Terraform state.
# The services read DATABASE_URL from the Kubernetes Secret named in spec.services.*.secretRef
# (ticketdb-credentials); see terraform/README.md for how to fill it.

resource "aws_security_group" "rds" {
  name        = "${local.cluster_name}-rds"
  description = "RDS PostgreSQL: 5432 from the EKS cluster only"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${local.cluster_name}-rds" }
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_eks" {
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from EKS"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

resource "aws_db_instance" "this" {
  identifier     = "${local.cluster_name}-postgres"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name                     = var.db_name
  username                    = var.db_master_username
  manage_master_user_password = true

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.rds.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  iam_database_authentication_enabled = var.db_iam_auth

  auto_minor_version_upgrade   = true
  backup_retention_period      = var.db_backup_retention_days
  copy_tags_to_snapshot        = true
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = false
  final_snapshot_identifier    = "${local.cluster_name}-postgres-final"
  performance_insights_enabled = true

  enabled_cloudwatch_logs_exports = ["postgresql"]
}
