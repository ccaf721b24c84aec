# Requires OpenTofu 1.11 or later, and hashicorp/random 3.7.1 or later for the ephemeral
# random_password.

# A fresh password each time OpenTofu opens it; OpenTofu never stores it.
ephemeral "random_password" "db" {
  length = 32
}

# Written on create, and again (a new password) each time value_wo_version is bumped: a
# rotation is a one-line change, and every reader finds the new value in the backend.
resource "atmos_secret_value" "db_password" {
  name             = "DB_PASSWORD"
  stack            = "prod"
  component        = "api"
  value_wo         = ephemeral.random_password.db.result
  value_wo_version = 1
}
