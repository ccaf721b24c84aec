//! `atmos_secret_value` through a real OpenTofu and real sops files: create, no-op, rotate via
//! `value_wo_version`, drift (deleted or rewritten out of band), import, destroy, and the write
//! rule for stack-scoped secrets, which must fail at plan time.

mod support;

use support::{AgeKey, Workspace, sops_decrypt, sops_encrypt_yaml};

/// A workspace with one stack `prod`: `SHARED` stack-scoped, `DB_PASSWORD` instance-scoped on
/// component `api`. Returns the workspace and its age key.
fn fixture() -> (Workspace, AgeKey) {
    let ws = Workspace::new();
    let key = ws.age_key("keys/age.txt");
    ws.write(
        "atmos.yaml",
        r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  name_pattern: "{stage}"
secrets:
  providers:
    vault:
      kind: sops/age
      spec:
        path: secrets
        age_key_file: keys/age.txt
"#,
    );
    ws.write(
        "stacks/prod.yaml",
        r#"vars:
  stage: prod
secrets:
  vars:
    SHARED:
      description: shared by every component
      sops: vault
components:
  terraform:
    api:
      secrets:
        vars:
          DB_PASSWORD:
            sops: vault
"#,
    );
    (ws, key)
}

fn main_tf(body: &str) -> String {
    format!(
        "{}\nprovider \"atmos\" {{}}\n\n{body}\n",
        support::REQUIRED_PROVIDERS
    )
}

fn decrypted(ws: &Workspace, key: &AgeKey, rel: &str) -> String {
    sops_decrypt(key, &ws.path(rel))
}

const WO: &str = r#"
variable "token" {
  type      = string
  ephemeral = true
}
variable "token_version" {
  type = number
}
resource "atmos_secret_value" "db" {
  name             = "DB_PASSWORD"
  stack            = "prod"
  component        = "api"
  value_wo         = var.token
  value_wo_version = var.token_version
}
"#;

#[test]
fn write_only_value_lifecycle() {
    let (ws, key) = fixture();
    ws.write("main.tf", main_tf(WO));
    ws.init().run().assert_success();

    let apply = |token: &str, version: u32| {
        ws.apply()
            .args(["-var", &format!("token={token}"), "-var"])
            .arg(format!("token_version={version}"))
            .run()
    };
    let out = apply("first-wo-value", 1);
    out.assert_success();
    assert!(out.stdout.contains("1 added"), "{out}");
    assert!(
        decrypted(&ws, &key, "secrets/prod.api.enc.yaml").contains("DB_PASSWORD: first-wo-value")
    );
    let state = ws.read("terraform.tfstate");
    assert!(
        !state.contains("first-wo-value"),
        "write-only value reached the state"
    );
    assert!(
        state.contains("\"id\": \"prod/api/DB_PASSWORD\""),
        "{state}"
    );
    assert!(state.contains("\"scope\": \"instance\""), "{state}");

    // Same version, new value: nothing to do (write-only changes are invisible by design).
    let out = ws
        .plan()
        .args([
            "-detailed-exitcode",
            "-var",
            "token=other",
            "-var",
            "token_version=1",
        ])
        .run();
    assert_eq!(out.status.code(), Some(0), "expected no changes: {out}");

    // Bumping the version writes the new value.
    let out = apply("second-wo-value", 2);
    out.assert_success();
    assert!(out.stdout.contains("1 changed"), "{out}");
    assert!(
        decrypted(&ws, &key, "secrets/prod.api.enc.yaml").contains("DB_PASSWORD: second-wo-value")
    );

    // Rewritten out of band: the next plan restores ours.
    sops_encrypt_yaml(
        &key,
        "DB_PASSWORD: intruder\n",
        &ws.path("secrets/prod.api.enc.yaml"),
    );
    let out = ws
        .plan()
        .args([
            "-detailed-exitcode",
            "-var",
            "token=second-wo-value",
            "-var",
            "token_version=2",
        ])
        .run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "drift must plan a change: {out}"
    );
    apply("second-wo-value", 2).assert_success();
    assert!(
        decrypted(&ws, &key, "secrets/prod.api.enc.yaml").contains("DB_PASSWORD: second-wo-value")
    );

    // Deleted out of band: planned again as a create.
    std::fs::remove_file(ws.path("secrets/prod.api.enc.yaml")).expect("remove");
    let out = ws
        .plan()
        .args(["-var", "token=second-wo-value", "-var", "token_version=2"])
        .run();
    out.assert_success();
    assert!(out.stdout.contains("will be created"), "{out}");
    apply("second-wo-value", 2).assert_success();

    // Destroy removes the key from the file.
    let out = ws
        .destroy()
        .args(["-var", "token=x", "-var", "token_version=2"])
        .run();
    out.assert_success();
    assert!(!decrypted(&ws, &key, "secrets/prod.api.enc.yaml").contains("DB_PASSWORD"));
}

#[test]
fn sensitive_value_is_written_masked_and_updated() {
    let (ws, key) = fixture();
    let tf = |v: &str| {
        main_tf(&format!(
            "resource \"atmos_secret_value\" \"shared\" {{\n  name  = \"SHARED\"\n  stack = \"prod\"\n  value = \"{v}\"\n}}\n"
        ))
    };
    ws.write("main.tf", tf("plain-one"));
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_success();
    assert!(out.stdout.contains("(sensitive value)"), "{out}");
    assert!(
        !out.combined().contains("plain-one"),
        "plan shows the value"
    );
    ws.apply().run().assert_success();
    assert!(decrypted(&ws, &key, "secrets/prod.enc.yaml").contains("SHARED: plain-one"));

    ws.write("main.tf", tf("plain-two"));
    let out = ws.apply().run();
    out.assert_success();
    assert!(out.stdout.contains("1 changed"), "{out}");
    assert!(!out.combined().contains("plain-two"));
    assert!(decrypted(&ws, &key, "secrets/prod.enc.yaml").contains("SHARED: plain-two"));
    let out = ws.plan().arg("-detailed-exitcode").run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "second plan must be empty: {out}"
    );
}

#[test]
fn writing_a_stack_scoped_secret_with_a_component_fails_at_plan() {
    let (ws, _key) = fixture();
    ws.write(
        "main.tf",
        main_tf(
            r#"resource "atmos_secret_value" "bad" {
  name      = "SHARED"
  stack     = "prod"
  component = "api"
  value     = "never-written"
}"#,
        ),
    );
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    let text = out.combined();
    assert!(text.contains("stack-scoped"), "{out}");
    assert!(text.contains("SHARED"), "{out}");
    assert!(text.contains("component"), "{out}");
    assert!(
        !ws.path("secrets/prod.enc.yaml").exists(),
        "nothing may be written"
    );
}

#[test]
fn import_by_id_for_both_scopes() {
    let (ws, key) = fixture();
    sops_encrypt_yaml(
        &key,
        "SHARED: existing-shared\n",
        &ws.path("secrets/prod.enc.yaml"),
    );
    sops_encrypt_yaml(
        &key,
        "DB_PASSWORD: existing-db\n",
        &ws.path("secrets/prod.api.enc.yaml"),
    );
    ws.write(
        "main.tf",
        main_tf(
            r#"resource "atmos_secret_value" "shared" {
  name  = "SHARED"
  stack = "prod"
  value = "existing-shared"
}
resource "atmos_secret_value" "db" {
  name      = "DB_PASSWORD"
  stack     = "prod"
  component = "api"
  value     = "existing-db"
}"#,
        ),
    );
    ws.init().run().assert_success();
    ws.import("atmos_secret_value.shared", "prod//SHARED")
        .run()
        .assert_success();
    ws.import("atmos_secret_value.db", "prod/api/DB_PASSWORD")
        .run()
        .assert_success();
    let out = ws
        .import("atmos_secret_value.db", "prod/nope/DB_PASSWORD")
        .run();
    out.assert_failure();
    let state = ws.read("terraform.tfstate");
    assert!(state.contains("prod//SHARED") && state.contains("prod/api/DB_PASSWORD"));
    assert!(
        !state.contains("existing-db"),
        "import must not copy the value into state"
    );
}

#[test]
fn validate_rejects_both_or_neither_value() {
    let (ws, _key) = fixture();
    ws.write(
        "main.tf",
        main_tf(
            r#"resource "atmos_secret_value" "both" {
  name     = "SHARED"
  stack    = "prod"
  value    = "a"
  value_wo = "b"
}
resource "atmos_secret_value" "neither" {
  name  = "SHARED"
  stack = "prod"
}"#,
        ),
    );
    ws.init().run().assert_success();
    let out = ws.validate().run();
    out.assert_failure();
    let text = out.combined();
    assert!(text.contains("Conflicting arguments"), "{out}");
    assert!(text.contains("Missing value"), "{out}");
    assert!(text.contains("atmos_secret_value.both"), "{out}");
}

#[test]
fn unknown_stack_at_plan_is_planned_unknown_then_written() {
    let (ws, key) = fixture();
    ws.write(
        "main.tf",
        main_tf(
            r#"resource "terraform_data" "where" {
  input = "prod"
}
resource "atmos_secret_value" "late" {
  name  = "SHARED"
  stack = terraform_data.where.output
  value = "written-later"
}"#,
        ),
    );
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_success();
    // The stack is only known at apply: location and version are unknown in the plan.
    assert!(
        out.stdout.contains("scope") && out.stdout.contains("(known after apply)"),
        "{out}"
    );
    ws.apply().run().assert_success();
    assert!(decrypted(&ws, &key, "secrets/prod.enc.yaml").contains("SHARED: written-later"));
}

#[test]
fn a_store_that_cannot_be_opened_fails_at_plan() {
    let (ws, _key) = fixture();
    // Point the SOPS provider at a key file that does not exist.
    let config = ws
        .read("atmos.yaml")
        .replace("keys/age.txt", "keys/missing.txt");
    ws.write("atmos.yaml", config);
    ws.write(
        "main.tf",
        main_tf(
            r#"resource "atmos_secret_value" "x" {
  name  = "SHARED"
  stack = "prod"
  value = "v"
}"#,
        ),
    );
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_failure();
    assert!(out.combined().contains("Store cannot be used"), "{out}");
    assert!(out.combined().contains("missing.txt"), "{out}");
}
