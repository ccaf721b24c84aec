# Every secret the "api" instance of "prod" sees: the stack's (DATADOG_API_KEY) and its own
# (DB_PASSWORD). One read per backend, however many secrets.
data "atmos_secrets" "api" {
  stack     = "prod"
  component = "api"
}

# Only some names; each must be declared there. Without a component, only the stack's secrets
# are visible.
data "atmos_secrets" "datadog" {
  stack = "prod"
  names = ["DATADOG_API_KEY"]
}

# Like `atmos secret validate`: every declared secret must have a value. `status` is not
# sensitive, so a failing check names the missing secrets in the clear.
check "api_secrets_initialized" {
  assert {
    condition     = alltrue([for s in values(data.atmos_secrets.api.status) : s == "initialized"])
    error_message = "Secrets without a value in prod/api: ${join(", ", [for n, s in data.atmos_secrets.api.status : n if s != "initialized"])}."
  }
}

# `values` is sensitive: a whole map, or one entry, must stay marked as such.
output "datadog_api_key" {
  value     = data.atmos_secrets.datadog.values["DATADOG_API_KEY"]
  sensitive = true
}

output "api_secret_status" {
  value = data.atmos_secrets.api.status
}
