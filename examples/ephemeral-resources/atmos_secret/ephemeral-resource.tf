# Requires OpenTofu 1.11 or later (ephemeral resources and write-only attributes).

# The value is read during plan and apply and never written to the plan or state file.
ephemeral "atmos_secret" "db_password" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}

# 1. Into a write-only attribute: the database gets the password, the state does not.
resource "aws_db_instance" "api" {
  identifier          = "api-prod"
  engine              = "postgres"
  instance_class      = "db.t4g.micro"
  allocated_storage   = 20
  username            = "api"
  password_wo         = ephemeral.atmos_secret.db_password.value
  password_wo_version = 1 # bump to send a changed password
  skip_final_snapshot = true
}

# 2. Into a provider configuration: provider arguments are never stored.
provider "postgresql" {
  host     = aws_db_instance.api.address
  port     = aws_db_instance.api.port
  username = "api"
  password = ephemeral.atmos_secret.db_password.value
  sslmode  = "require"
}
