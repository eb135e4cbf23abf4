# The user service's table (DESIGN.md: ticket-booking-users, key userId). On-demand capacity.
# The service keeps users and email claims in this one table (both keyed by userId), so it has no
# secondary index. Run user-service with USERS_TABLE_AUTO_CREATE=false in AWS: the table is here.
resource "aws_dynamodb_table" "users" {
  name         = var.users_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "userId"

  attribute {
    name = "userId"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = var.deletion_protection
}
