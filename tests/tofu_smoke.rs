//! Smoke tests of the harness itself against the real OpenTofu, sops and age, and the end-to-end
//! check of `examples/quickstart`.

mod support;

use support::*;

/// The plaintext values encrypted in `examples/quickstart/secrets/`. Fixtures only, not secrets.
const QUICKSTART_DATADOG_API_KEY: &str = "dd-example-3f9a1c7e5b2d4086";
const QUICKSTART_DB_PASSWORD: &str = "example-db-password-7Kq2Vx9";

#[test]
fn tofu_version_is_the_pinned_peer() {
    let ws = Workspace::new();
    let out = ws.tofu(["version"]).run();
    out.assert_success();
    assert!(out.stdout.contains("OpenTofu v1.12.6"), "{out}");
}

#[test]
fn tofu_init_apply_output_without_providers() {
    let ws = Workspace::new();
    ws.write("main.tf", "output \"greeting\" {\n  value = \"hello\"\n}\n");
    ws.init().run().assert_success();
    ws.validate().run().assert_success();
    ws.apply().run().assert_success();
    let outputs = ws.output_json().run().stdout_json();
    assert_eq!(outputs["greeting"]["value"], "hello", "{outputs}");
}

#[test]
fn failing_command_is_reported_not_hidden() {
    let ws = Workspace::new();
    ws.write("main.tf", "this is not hcl {\n");
    let out = ws.validate().run();
    out.assert_failure();
    assert!(out.stderr.contains("main.tf"), "{out}");
}

#[test]
fn mirror_holds_the_provider_in_the_unpacked_layout() {
    let ws = Workspace::new();
    let binary = ws
        .mirror_dir()
        .join("localhost/atmos/atmos/0.1.0")
        .join(platform())
        .join("terraform-provider-atmos_v0.1.0");
    assert!(binary.is_file(), "{} missing", binary.display());
    let config = std::fs::read_to_string(ws.cli_config()).expect("read the CLI config");
    assert!(config.contains("filesystem_mirror"), "{config}");
    assert!(
        config.contains(r#"exclude = ["localhost/*/*"]"#),
        "{config}"
    );
}

#[test]
fn age_and_sops_round_trip() {
    let ws = Workspace::new();
    let key = ws.age_key("keys/test.agekey");
    assert!(key.recipient.starts_with("age1"));
    let file = ws.sops_file(&key, "secrets/prod.enc.yaml", "API_KEY: fixture-value-1\n");
    let encrypted = ws.read("secrets/prod.enc.yaml");
    assert!(!encrypted.contains("fixture-value-1"), "{encrypted}");
    assert!(encrypted.contains(&key.recipient), "{encrypted}");
    assert_eq!(sops_decrypt(&key, &file), "API_KEY: fixture-value-1\n");
}

#[test]
fn quickstart_fixtures_decrypt_with_real_sops() {
    let example = example_dir("quickstart");
    let key = age_key_from_file(&example.join("keys/example.agekey"));
    let stack = sops_decrypt(&key, &example.join("secrets/prod.enc.yaml"));
    assert!(
        stack.contains(&format!("DATADOG_API_KEY: {QUICKSTART_DATADOG_API_KEY}")),
        "{stack}"
    );
    let instance = sops_decrypt(&key, &example.join("secrets/prod.api.enc.yaml"));
    assert!(
        instance.contains(&format!("DB_PASSWORD: {QUICKSTART_DB_PASSWORD}")),
        "{instance}"
    );
}

// End-to-end: needs a working provider. It fails until the provider serves `atmos_secret`; keep it
// that way rather than ignoring it, so the suite says when the quickstart really works.
#[test]
fn quickstart_plan_masks_values() {
    let ws = Workspace::new();
    ws.copy_example("quickstart");
    ws.init().run().assert_success();
    let out = ws.plan().run();
    out.assert_success();
    assert!(out.stdout.contains("(sensitive value)"), "{out}");
    for plaintext in [QUICKSTART_DATADOG_API_KEY, QUICKSTART_DB_PASSWORD] {
        assert!(
            !out.combined().contains(plaintext),
            "plan output shows a secret value in plaintext"
        );
    }
}

#[test]
fn init_installs_the_provider_from_the_mirror() {
    let ws = Workspace::new();
    ws.write("main.tf", REQUIRED_PROVIDERS);
    let out = ws.init().run();
    out.assert_success();
    assert!(
        out.stdout
            .contains("Installed localhost/atmos/atmos v0.1.0 (unauthenticated)"),
        "{out}"
    );
    let lock = ws.read(".terraform.lock.hcl");
    assert!(
        lock.contains(r#"provider "localhost/atmos/atmos""#),
        "{lock}"
    );
    assert!(lock.contains(r#"version = "0.1.0""#), "{lock}");
    assert!(lock.contains("\"h1:"), "{lock}");
    let installed = ws
        .path(".terraform/providers/localhost/atmos/atmos/0.1.0")
        .join(platform())
        .join("terraform-provider-atmos_v0.1.0");
    assert!(installed.is_file(), "{} missing", installed.display());
}

#[test]
fn dev_overrides_are_in_effect() {
    let ws = Workspace::with_install(Install::DevOverrides);
    ws.write("main.tf", REQUIRED_PROVIDERS);
    let out = ws.init().run();
    out.assert_success();
    assert!(
        out.combined()
            .contains("Provider development overrides are in effect"),
        "{out}"
    );
    let dev = ws.root().join("dev").display().to_string();
    assert!(
        out.combined()
            .contains(&format!("localhost/atmos/atmos in {dev}")),
        "{out}"
    );
}

#[test]
fn a_hung_command_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"sleep 300 & echo $! > "$1"; wait"#)
        .arg("sh")
        .arg(&pid_file);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_bounded(cmd, std::time::Duration::from_secs(1))
    }));
    let message = match outcome {
        Ok(out) => panic!("a command sleeping 300 s returned within a 1 s limit:\n{out}"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("did not finish within 1s"), "{message}");
    let pid = std::fs::read_to_string(&pid_file).expect("the shell wrote its child's pid");
    // The grandchild is gone, or at most a zombie waiting for a reaper.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "grandchild still running: {stat}"
    );
}

#[test]
fn per_run_environment_reaches_tofu() {
    let ws = Workspace::new();
    ws.write("main.tf", "output \"x\" {\n  value = 1\n}\n");
    let log = ws.root().join("tofu.log");
    ws.init()
        .env("TF_LOG", "trace")
        .env("TF_LOG_PATH", &log)
        .run()
        .assert_success();
    let text = std::fs::read_to_string(&log).expect("TF_LOG_PATH was written");
    assert!(text.contains("OpenTofu version: 1.12.6"), "{text}");
}
