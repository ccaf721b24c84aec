# Instance-scoped: stack/component/NAME.
tofu import atmos_secret_value.x prod/api/DB_PASSWORD

# Stack-scoped (no component): stack//NAME.
tofu import atmos_secret_value.y prod//DATADOG_API_KEY
