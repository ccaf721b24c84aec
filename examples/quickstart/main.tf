# Reads the two secrets declared in stacks/prod.yaml through the atmos provider.
# `tofu plan` shows "(sensitive value)" for the values and plain text for where they live.

terraform {
  required_providers {
    atmos = {
      # A local source address: scripts/quickstart installs the provider from a filesystem mirror.
      source = "localhost/atmos/atmos"
    }
  }
}

# Finds atmos.yaml in the working directory (or set cli_config_path / ATMOS_CLI_CONFIG_PATH).
provider "atmos" {}

# Stack-scoped: declared at the top level of the prod stack.
data "atmos_secret" "datadog_api_key" {
  name  = "DATADOG_API_KEY"
  stack = "prod"
}

# Instance-scoped: declared under components.terraform.api in the prod stack.
data "atmos_secret" "db_password" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}

output "datadog_api_key" {
  value     = data.atmos_secret.datadog_api_key.value
  sensitive = true
}

output "datadog_api_key_scope" {
  value = data.atmos_secret.datadog_api_key.scope
}

output "datadog_api_key_store" {
  value = data.atmos_secret.datadog_api_key.store
}

output "db_password" {
  value     = data.atmos_secret.db_password.value
  sensitive = true
}

output "db_password_scope" {
  value = data.atmos_secret.db_password.scope
}

output "db_password_store" {
  value = data.atmos_secret.db_password.store
}
