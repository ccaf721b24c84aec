//! Acceptance tests of `atmos_secret` through the real OpenTofu, with fixtures written by each test:
//! an Atmos tree, an age key from the real `age-keygen` and SOPS files from the real `sops`.
//!
//! Every test has its own [`Workspace`]; values are planted with a random suffix (a "canary") so a
//! leak anywhere (terminal, provider trace, plan file, state) can be found by a plain search.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// A value no other test and no log line can contain by accident.
fn canary(label: &str) -> String {
    let suffix: u64 = rand_suffix();
    format!("canary-{label}-{suffix:016x}")
}

fn rand_suffix() -> u64 {
    // The address of a fresh heap allocation mixed with the clock and pid: unique enough for test
    // canaries without adding a dependency.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let heap = Box::new(0u8);
    let addr = &*heap as *const u8 as u64;
    now ^ addr.rotate_left(32) ^ u64::from(std::process::id()).rotate_left(17)
}

/// `s` as a YAML scalar (a JSON string is a valid YAML double-quoted scalar).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Values of the fixture tree.
struct Values<'a> {
    /// Stack-scoped `DATADOG_API_KEY` of stack `prod`.
    stack: &'a str,
    /// Instance-scoped `DB_PASSWORD` of `api` in `prod`.
    instance: &'a str,
}

const ATMOS_YAML: &str = r#"base_path: "."
stacks:
  base_path: stacks
  included_paths:
    - "**/*"
  excluded_paths:
    - "**/_defaults.yaml"
  name_pattern: "{stage}"
secrets:
  providers:
    local-sops:
      kind: sops/age
      spec:
        path: secrets
        age_key_file: keys/test.agekey
"#;

const PROD_YAML: &str = r#"import:
  - _defaults
vars:
  stage: prod
secrets:
  vars:
    DATADOG_API_KEY:
      description: Datadog API key
      sops: local-sops
    SLACK_WEBHOOK:
      sops: local-sops
components:
  terraform:
    api:
      vars:
        replicas: 2
      secrets:
        vars:
          DB_PASSWORD:
            description: Password of the api database user
            sops: local-sops
"#;

const STAGING_YAML: &str = r#"vars:
  stage: staging
secrets:
  vars:
    DATADOG_API_KEY:
      sops: local-sops
"#;

/// Writes the Atmos tree under `dir` (relative to the work directory; "" for the work directory
/// itself) and encrypts `values` with a fresh age key. Returns the key.
fn atmos_tree(ws: &Workspace, dir: &str, values: &Values) -> AgeKey {
    let at = |rel: &str| Path::new(dir).join(rel);
    ws.write(at("atmos.yaml"), ATMOS_YAML);
    ws.write(at("stacks/_defaults.yaml"), "vars:\n  namespace: test\n");
    ws.write(at("stacks/prod.yaml"), PROD_YAML);
    ws.write(at("stacks/staging.yaml"), STAGING_YAML);
    let key = ws.age_key(at("keys/test.agekey"));
    ws.sops_file(
        &key,
        at("secrets/prod.enc.yaml"),
        &format!("DATADOG_API_KEY: {}\n", yaml_str(values.stack)),
    );
    ws.sops_file(
        &key,
        at("secrets/prod.api.enc.yaml"),
        &format!("DB_PASSWORD: {}\n", yaml_str(values.instance)),
    );
    key
}

/// The root module reading both secrets through data sources into sensitive outputs.
fn data_module(provider_block: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
{provider_block}

data "atmos_secret" "dd" {{
  name  = "DATADOG_API_KEY"
  stack = "prod"
}}

data "atmos_secret" "db" {{
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}}

output "dd" {{
  value     = data.atmos_secret.dd.value
  sensitive = true
}}

output "dd_scope" {{
  value = data.atmos_secret.dd.scope
}}

output "db" {{
  value     = data.atmos_secret.db.value
  sensitive = true
}}

output "db_scope" {{
  value = data.atmos_secret.db.scope
}}
"#
    )
}

/// A root module with one `data "atmos_secret"` reading `name` from `stack`.
fn one_secret(name_hcl: &str, stack: &str, component: Option<&str>) -> String {
    let component = component
        .map(|c| format!("  component = {}\n", yaml_str(c)))
        .unwrap_or_default();
    format!(
        "{REQUIRED_PROVIDERS}\nprovider \"atmos\" {{}}\n\ndata \"atmos_secret\" \"x\" {{\n  name  = {name_hcl}\n  stack = {}\n{component}}}\n\noutput \"x\" {{\n  value     = data.atmos_secret.x.value\n  sensitive = true\n}}\n",
        yaml_str(stack)
    )
}

#[track_caller]
fn assert_absent(haystack: &[u8], needle: &str, what: &str) {
    let found = haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes());
    assert!(!found, "the secret value leaked into {what}");
}

/// All entries of a zip file (a saved plan), decompressed and concatenated, via `unzip -p`.
fn unzip_all(path: &Path) -> Vec<u8> {
    let out = Command::new("unzip")
        .arg("-p")
        .arg(path)
        .output()
        .expect("run unzip");
    assert!(out.status.success(), "unzip -p {} failed", path.display());
    assert!(!out.stdout.is_empty(), "the plan file holds nothing");
    out.stdout
}

// ---------------------------------------------------------------------------------------------
// Values

#[test]
fn plan_masks_values() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write("main.tf", data_module("provider \"atmos\" {}"));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_success();
    assert!(out.stdout.contains("(sensitive value)"), "{out}");
    for v in [&dd, &db] {
        assert_absent(out.combined().as_bytes(), v, "plan output");
    }
}

#[test]
fn apply_outputs_equal_the_encrypted_values() {
    let ws = Workspace::new();
    // A multi-line value (trailing newline kept), and one with unicode, quotes and backslashes.
    let dd = format!("line one\nline two\t{}\n", canary("dd"));
    let db = format!(
        "p\u{e4}ss \"w\u{f6}rd\" 'x' \\ \u{1f511} \u{65e5}\u{672c} {}",
        canary("db")
    );
    let key = atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    // What real sops decrypts is what the provider must return.
    let decrypted = |rel: &str, name: &str| {
        let plain = sops_decrypt(&key, &ws.path(rel));
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&plain).expect("yaml");
        doc[name].as_str().expect("a string value").to_owned()
    };
    let (dd_sops, db_sops) = (
        decrypted("secrets/prod.enc.yaml", "DATADOG_API_KEY"),
        decrypted("secrets/prod.api.enc.yaml", "DB_PASSWORD"),
    );
    assert!(
        dd_sops == dd && db_sops == db,
        "sops did not round-trip the fixture"
    );
    ws.write("main.tf", data_module("provider \"atmos\" {}"));
    ws.init().run().assert_success();
    let out = ws.apply().run();
    out.assert_success();
    for v in [&dd, &db] {
        assert_absent(out.combined().as_bytes(), v, "apply output");
    }
    let outputs = ws.output_json().run().stdout_json();
    assert_eq!(outputs["dd"]["sensitive"], true, "{outputs}");
    assert!(
        outputs["dd"]["value"] == dd_sops.as_str(),
        "stack-scoped value differs"
    );
    assert_eq!(outputs["dd_scope"]["value"], "stack");
    assert_eq!(outputs["db"]["sensitive"], true);
    assert!(
        outputs["db"]["value"] == db_sops.as_str(),
        "instance value differs"
    );
    assert_eq!(outputs["db_scope"]["value"], "instance");
}

// ---------------------------------------------------------------------------------------------
// Lookups that fail

/// Plans a module reading `name` from `stack` (and `component`); returns stderr on one line.
fn failing_plan(ws: &Workspace, name: &str, stack: &str, component: Option<&str>) -> String {
    ws.write("main.tf", one_secret(&yaml_str(name), stack, component));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert!(!out.combined().contains("panicked"), "{out}");
    // tofu wraps diagnostics at 78 columns.
    out.stderr.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn plain_tree(ws: &Workspace) {
    atmos_tree(
        ws,
        "",
        &Values {
            stack: "a",
            instance: "b",
        },
    );
}

#[test]
fn undeclared_name_names_stack_declared_and_closest() {
    let ws = Workspace::new();
    plain_tree(&ws);
    let err = failing_plan(&ws, "DATADOG_API_KY", "prod", None);
    for part in [
        "Undeclared secret",
        "\"DATADOG_API_KY\" is not declared in stack \"prod\"",
        "declared there: DATADOG_API_KEY, SLACK_WEBHOOK",
        "did you mean \"DATADOG_API_KEY\"?",
    ] {
        assert!(err.contains(part), "missing {part:?}:\n{err}");
    }
    assert!(!err.contains("?."), "{err}");
}

#[test]
fn undeclared_name_in_a_component_lists_what_the_instance_sees() {
    let ws = Workspace::new();
    plain_tree(&ws);
    let err = failing_plan(&ws, "DB_PASWORD", "prod", Some("api"));
    for part in [
        "\"DB_PASWORD\"",
        "\"prod\"",
        "\"api\"",
        "DB_PASSWORD",
        "DATADOG_API_KEY",
        "did you mean \"DB_PASSWORD\"?",
    ] {
        assert!(err.contains(part), "missing {part:?}:\n{err}");
    }
}

#[test]
fn unknown_stack_suggests_closest_stacks() {
    let ws = Workspace::new();
    plain_tree(&ws);
    let err = failing_plan(&ws, "DATADOG_API_KEY", "prd", None);
    assert!(err.contains("Unknown stack"), "{err}");
    assert!(err.contains("stack \"prd\" not found"), "{err}");
    assert!(err.contains("did you mean \"prod\""), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Leaks

#[test]
fn provider_trace_and_terminal_never_show_the_value() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write("main.tf", data_module("provider \"atmos\" {}"));
    let logs: Vec<_> = ["init", "plan", "apply"]
        .iter()
        .map(|s| ws.root().join(format!("{s}.log")))
        .collect();
    let runs = [
        ws.init().provider_trace(&logs[0]).run(),
        ws.plan().provider_trace(&logs[1]).run(),
        ws.apply().provider_trace(&logs[2]).run(),
    ];
    for run in &runs {
        run.assert_success();
        for v in [&dd, &db] {
            assert_absent(run.combined().as_bytes(), v, &run.command);
        }
    }
    let plan_log = std::fs::read(&logs[1]).expect("TF_LOG_PATH written");
    // The trace is real: the provider's own lines about these very reads are there.
    let text = String::from_utf8_lossy(&plan_log);
    for line in [
        "reading secret DATADOG_API_KEY for stack prod",
        "reading secret DB_PASSWORD for stack prod component api",
    ] {
        assert!(
            text.contains(line),
            "no provider line {line:?} in the trace"
        );
    }
    for log in &logs {
        let bytes = std::fs::read(log).unwrap_or_default();
        for v in [&dd, &db] {
            assert_absent(&bytes, v, &log.display().to_string());
        }
    }
}

const EPHEMERAL_MODULE: &str = r#"
provider "atmos" {}

ephemeral "atmos_secret" "db" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
}

locals {
  db = ephemeral.atmos_secret.db.value
}

resource "terraform_data" "uses" {
  input = "uses-the-secret"

  lifecycle {
    precondition {
      condition     = length(local.db) > 0
      error_message = "the ephemeral secret is empty"
    }
  }
}

output "scope" {
  value = terraform_data.uses.output
}

# The control: a data source's value does land in plan and state (sensitive, but stored), so the
# searches below demonstrably find a planted value when it is there.
data "atmos_secret" "dd" {
  name  = "DATADOG_API_KEY"
  stack = "prod"
}

output "dd" {
  value     = data.atmos_secret.dd.value
  sensitive = true
}
"#;

#[test]
fn ephemeral_value_stays_out_of_plan_and_state() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write("main.tf", format!("{REQUIRED_PROVIDERS}{EPHEMERAL_MODULE}"));
    let (plan_log, apply_log) = (ws.root().join("plan.log"), ws.root().join("apply.log"));
    ws.init().run().assert_success();
    let plan = ws.plan_out("saved.tfplan").provider_trace(&plan_log).run();
    plan.assert_success();
    assert_absent(plan.combined().as_bytes(), &db, "plan output");
    let file = std::fs::read(ws.path("saved.tfplan")).expect("saved plan");
    assert_absent(&file, &db, "the saved plan file");
    let entries = unzip_all(&ws.path("saved.tfplan"));
    assert_absent(&entries, &db, "the saved plan's entries");
    assert!(
        String::from_utf8_lossy(&entries).contains(&dd),
        "control failed: the data source's value is not found in the plan"
    );
    let shown = ws.show_plan_json("saved.tfplan").run();
    shown.assert_success();
    assert_absent(shown.stdout.as_bytes(), &db, "tofu show -json of the plan");
    let apply = ws
        .apply_plan("saved.tfplan")
        .provider_trace(&apply_log)
        .run();
    apply.assert_success();
    assert_absent(apply.combined().as_bytes(), &db, "apply output");
    let state = std::fs::read(ws.path("terraform.tfstate")).expect("state");
    assert_absent(&state, &db, "the state file");
    assert!(
        String::from_utf8_lossy(&state).contains(&dd),
        "control failed: the data source's value is not found in the state"
    );
    for log in [&plan_log, &apply_log] {
        let trace = std::fs::read(log).expect("trace");
        assert!(
            String::from_utf8_lossy(&trace).contains("reading secret DB_PASSWORD"),
            "the provider did not trace the ephemeral read"
        );
        assert_absent(&trace, &db, "the trace");
        assert_absent(&trace, &dd, "the trace");
    }
    let outputs = ws.output_json().run().stdout_json();
    assert_eq!(outputs["scope"]["value"], "uses-the-secret", "{outputs}");
}

#[test]
fn ephemeral_value_reaches_a_child_module_ephemeral_output() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write(
        "child/main.tf",
        format!(
            "{REQUIRED_PROVIDERS}\nephemeral \"atmos_secret\" \"db\" {{\n  name      = \"DB_PASSWORD\"\n  stack     = \"prod\"\n  component = \"api\"\n}}\n\noutput \"db\" {{\n  value     = ephemeral.atmos_secret.db.value\n  ephemeral = true\n}}\n"
        ),
    );
    ws.write(
        "main.tf",
        format!(
            "{REQUIRED_PROVIDERS}\nprovider \"atmos\" {{}}\n\nmodule \"child\" {{\n  source = \"./child\"\n}}\n\nlocals {{\n  db = module.child.db\n}}\n\ncheck \"non_empty\" {{\n  assert {{\n    condition     = length(local.db) > 0\n    error_message = \"empty secret\"\n  }}\n}}\n"
        ),
    );
    ws.init().run().assert_success();
    let plan = ws.plan_out("saved.tfplan").run();
    plan.assert_success();
    assert!(!plan.combined().contains("empty secret"), "{plan}");
    assert_absent(plan.combined().as_bytes(), &db, "plan output");
    assert_absent(&unzip_all(&ws.path("saved.tfplan")), &db, "the saved plan");
    let apply = ws.apply_plan("saved.tfplan").run();
    apply.assert_success();
    assert_absent(apply.combined().as_bytes(), &db, "apply output");
    let state = std::fs::read(ws.path("terraform.tfstate")).unwrap_or_default();
    assert_absent(&state, &db, "the state file");
}

// ---------------------------------------------------------------------------------------------
// Where atmos.yaml is

#[test]
fn cli_config_path_in_the_provider_block() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "infra/atmos",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write(
        "main.tf",
        data_module("provider \"atmos\" {\n  cli_config_path = \"infra/atmos\"\n}"),
    );
    ws.init().run().assert_success();
    ws.apply().run().assert_success();
    let outputs = ws.output_json().run().stdout_json();
    assert_eq!(outputs["dd"]["value"], dd.as_str());
    assert_eq!(outputs["db"]["value"], db.as_str());
}

#[test]
fn atmos_cli_config_path_from_the_environment() {
    let ws = Workspace::new();
    let (dd, db) = (canary("dd"), canary("db"));
    atmos_tree(
        &ws,
        "infra/atmos",
        &Values {
            stack: &dd,
            instance: &db,
        },
    );
    ws.write("main.tf", data_module("provider \"atmos\" {}"));
    ws.init().run().assert_success();
    // Without the variable, nothing is found.
    let out = ws.plan().run();
    out.assert_failure();
    assert!(out.stderr.contains("atmos.yaml"), "{out}");
    let dir = ws.path("infra/atmos");
    ws.apply()
        .env("ATMOS_CLI_CONFIG_PATH", &dir)
        .run()
        .assert_success();
    let outputs = ws.output_json().run().stdout_json();
    assert_eq!(outputs["dd"]["value"], dd.as_str());
    assert_eq!(outputs["db"]["value"], db.as_str());
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[track_caller]
fn assert_no_panic(out: &RunOutput) {
    let all = out.combined();
    assert!(
        !all.contains("panicked")
            && !all.contains("plugin crashed")
            && !all.contains("RUST_BACKTRACE"),
        "the provider crashed:\n{out}"
    );
}

#[test]
fn missing_sops_file_says_no_value_is_set() {
    let ws = Workspace::new();
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: "a",
            instance: "b",
        },
    );
    std::fs::remove_file(ws.path("secrets/prod.api.enc.yaml")).expect("remove");
    ws.write(
        "main.tf",
        one_secret("\"DB_PASSWORD\"", "prod", Some("api")),
    );
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert_no_panic(&out);
    let err = out.stderr.replace('\n', " ");
    for part in ["DB_PASSWORD", "local-sops", "no value"] {
        assert!(err.contains(part), "missing {part:?}:\n{out}");
    }
}

#[test]
fn tampered_sops_file_is_refused_without_showing_values() {
    let ws = Workspace::new();
    let dd = canary("dd");
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: &dd,
            instance: "b",
        },
    );
    // Flip one character of the value's ciphertext: AES-GCM (or the MAC) must refuse the file.
    let path = ws.path("secrets/prod.enc.yaml");
    let text = ws.read("secrets/prod.enc.yaml");
    let start = text
        .find("ENC[AES256_GCM,data:")
        .expect("an encrypted value")
        + 20;
    let mut bytes = text.into_bytes();
    bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, bytes).expect("write");
    ws.write("main.tf", one_secret("\"DATADOG_API_KEY\"", "prod", None));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert_no_panic(&out);
    assert!(out.stderr.contains("prod.enc.yaml"), "{out}");
    assert_absent(out.combined().as_bytes(), &dd, "the error");
}

#[test]
fn sops_file_for_another_key_names_the_file() {
    let ws = Workspace::new();
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: "a",
            instance: "b",
        },
    );
    let other = ws.age_key("keys/other.agekey");
    ws.sops_file(&other, "secrets/prod.enc.yaml", "DATADOG_API_KEY: x\n");
    ws.write("main.tf", one_secret("\"DATADOG_API_KEY\"", "prod", None));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert_no_panic(&out);
    assert!(out.stderr.contains("prod.enc.yaml"), "{out}");
}

#[test]
fn malformed_stack_yaml_names_file_and_line() {
    let ws = Workspace::new();
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: "a",
            instance: "b",
        },
    );
    ws.write(
        "stacks/staging.yaml",
        "vars:\n  stage: staging\nsecrets:\n  vars: [unclosed\n",
    );
    ws.write("main.tf", one_secret("\"DATADOG_API_KEY\"", "prod", None));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert_no_panic(&out);
    let err = out.stderr.replace('\n', " ");
    assert!(err.contains("staging.yaml:"), "no file:line:\n{out}");
    // The line the parser stops at is given as file:LINE:COLUMN.
    let after = &err[err.find("staging.yaml:").expect("file named") + "staging.yaml:".len()..];
    assert!(
        after.starts_with(|c: char| c.is_ascii_digit()),
        "no line number after the file:\n{out}"
    );
}

#[test]
fn wrong_attribute_type_is_tofus_own_error() {
    let ws = Workspace::new();
    atmos_tree(
        &ws,
        "",
        &Values {
            stack: "a",
            instance: "b",
        },
    );
    ws.write("main.tf", one_secret("[\"x\"]", "prod", None));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert_no_panic(&out);
    assert!(
        out.stderr.contains("Incorrect attribute value type"),
        "{out}"
    );
    assert!(out.stderr.contains("string required"), "{out}");
}
