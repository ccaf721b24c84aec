# Runs without other providers: the value reaches a command's environment, and nothing else.

ephemeral "atmos_secret" "db_password" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}

# Provisioner blocks may use ephemeral values. OpenTofu hides the command's output when one
# does, and keeps neither the value nor the output.
resource "terraform_data" "migrate" {
  provisioner "local-exec" {
    # Stands in for a tool that needs the password, e.g. `psql -f migrate.sql`.
    command = "test -n \"$PGPASSWORD\""
    environment = {
      PGPASSWORD = ephemeral.atmos_secret.db_password.value
    }
  }
}
