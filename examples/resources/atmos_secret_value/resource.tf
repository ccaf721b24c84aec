# Requires OpenTofu 1.11 or later (ephemeral variables and write-only attributes).

# The new password, given at apply time (-var or TF_VAR_db_password). An ephemeral variable is
# never written to a plan or state file.
variable "db_password" {
  type      = string
  ephemeral = true
}

# Instance-scoped: DB_PASSWORD is declared under components.terraform.api in "prod", so the
# write names the component. The value goes to secrets/prod.api.enc.yaml and nowhere else.
resource "atmos_secret_value" "db_password" {
  name             = "DB_PASSWORD"
  stack            = "prod"
  component        = "api"
  value_wo         = var.db_password
  value_wo_version = 1 # bump to write a changed var.db_password
}

# The Datadog key, as a sensitive (not ephemeral) variable: it is masked in plans.
variable "datadog_api_key" {
  type      = string
  sensitive = true
}

# Stack-scoped: DATADOG_API_KEY is declared at the top level of "prod", so the write has no
# component. `value` is compared with the backend on every refresh, but it is kept in state.
resource "atmos_secret_value" "datadog_api_key" {
  name  = "DATADOG_API_KEY"
  stack = "prod"
  value = var.datadog_api_key
}

# Where each value went; none of these is sensitive.
output "written" {
  value = {
    for s in [atmos_secret_value.db_password, atmos_secret_value.datadog_api_key] :
    s.id => "${s.scope} scope in ${s.store}, version ${s.version}"
  }
}
