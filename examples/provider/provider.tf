terraform {
  required_providers {
    atmos = {
      # The provider is not published to a registry yet. scripts/quickstart installs it into a
      # local filesystem mirror under this address.
      source = "localhost/atmos/atmos"
    }
  }
}

# Every attribute is optional. With none set, the provider looks for atmos.yaml in
# ATMOS_CLI_CONFIG_PATH, then in the working directory and its parents.
provider "atmos" {
  # Directory holding atmos.yaml (or the file itself).
  cli_config_path = "${path.root}/../quickstart"

  # Defaults for every atmos_secret that does not set its own stack / component.
  stack = "prod"
}
