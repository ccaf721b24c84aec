//! Scopes through a real OpenTofu and real sops files: a stack secret read from two components,
//! a stack secret re-declared under one component (pulled down to instance scope there only),
//! and a global secret shared by every stack.

mod support;

use support::Workspace;

const ATMOS_YAML: &str = r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  excluded_paths: ["**/_defaults.yaml"]
  name_pattern: "{stage}"
secrets:
  providers:
    vault:
      kind: sops/age
      spec:
        # One file per scope; the global file has no stack in its name.
        file: 'secrets/{{ if .stack }}{{ .stack }}{{ else }}global{{ end }}{{ if .component }}.{{ .component }}{{ end }}.enc.yaml'
        age_key_file: keys/age.txt
"#;

const DEFAULTS: &str = r#"secrets:
  vars:
    LICENSE:
      description: one value for every stack
      scope: global
      sops: vault
"#;

fn stack(stage: &str) -> String {
    format!(
        r#"import:
  - _defaults
vars:
  stage: {stage}
secrets:
  vars:
    API_KEY:
      sops: vault
components:
  terraform:
    api:
      vars: {{}}
    worker:
      secrets:
        vars:
          # Re-declared here: "worker" gets its own value; "api" keeps the stack's.
          API_KEY: {{}}
"#
    )
}

const MAIN_TF: &str = r#"
provider "atmos" {}

locals {
  reads = {
    api_key_api       = { stack = "prod", component = "api", name = "API_KEY" }
    api_key_stack     = { stack = "prod", component = null, name = "API_KEY" }
    api_key_worker    = { stack = "prod", component = "worker", name = "API_KEY" }
    license_prod_api  = { stack = "prod", component = "api", name = "LICENSE" }
    license_staging   = { stack = "staging", component = null, name = "LICENSE" }
  }
}

data "atmos_secret" "s" {
  for_each  = local.reads
  name      = each.value.name
  stack     = each.value.stack
  component = each.value.component
}

output "values" {
  value     = { for k, d in data.atmos_secret.s : k => d.value }
  sensitive = true
}

output "scopes" {
  value = { for k, d in data.atmos_secret.s : k => d.scope }
}
"#;

#[test]
fn stack_instance_override_and_global_scopes() {
    let ws = Workspace::new();
    let key = ws.age_key("keys/age.txt");
    ws.write("atmos.yaml", ATMOS_YAML);
    ws.write("stacks/_defaults.yaml", DEFAULTS);
    ws.write("stacks/prod.yaml", stack("prod"));
    ws.write("stacks/staging.yaml", stack("staging"));
    ws.sops_file(&key, "secrets/prod.enc.yaml", "API_KEY: stack-value-prod\n");
    ws.sops_file(
        &key,
        "secrets/prod.worker.enc.yaml",
        "API_KEY: worker-own-value\n",
    );
    ws.sops_file(&key, "secrets/global.enc.yaml", "LICENSE: one-license\n");
    ws.write(
        "main.tf",
        format!("{}{MAIN_TF}", support::REQUIRED_PROVIDERS),
    );

    ws.init().run().assert_success();
    let plan = ws.plan().run();
    plan.assert_success();
    for v in ["stack-value-prod", "worker-own-value", "one-license"] {
        assert!(!plan.combined().contains(v), "plan shows a value");
    }
    ws.apply().run().assert_success();
    let out = ws.output_json().run().stdout_json();
    let values = &out["values"]["value"];
    let scopes = &out["scopes"]["value"];

    // A stack secret: the same value from the stack and from a component that does not
    // re-declare it.
    assert_eq!(values["api_key_stack"], "stack-value-prod");
    assert_eq!(values["api_key_api"], "stack-value-prod");
    assert_eq!(scopes["api_key_api"], "stack");
    // Re-declared under "worker": pulled down to instance scope for that component only.
    assert_eq!(values["api_key_worker"], "worker-own-value");
    assert_eq!(scopes["api_key_worker"], "instance");
    // Global: one value for every stack.
    assert_eq!(values["license_prod_api"], "one-license");
    assert_eq!(values["license_staging"], "one-license");
    assert_eq!(scopes["license_staging"], "global");
}
