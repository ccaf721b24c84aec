# Stack-scoped: declared at the top level of the "prod" stack manifest. Every component of
# "prod" reads the same value.
data "atmos_secret" "datadog_api_key" {
  name  = "DATADOG_API_KEY"
  stack = "prod"
}

# Instance-scoped: declared under components.terraform.api in "prod". The value belongs to
# the "api" instance in "prod" only.
data "atmos_secret" "db_password" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}

# The value is sensitive: plans show "(sensitive value)". It is still written to state, like
# every data source result; use the ephemeral resource to keep it out of state.
output "db_password" {
  value     = data.atmos_secret.db_password.value
  sensitive = true
}

# scope, store and description are not sensitive.
output "db_password_location" {
  value = "${data.atmos_secret.db_password.scope} scope in ${data.atmos_secret.db_password.store}"
}
