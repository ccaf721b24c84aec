//! The AWS stores (`aws/ssm`, `aws/asm`) against a real moto server (`scripts/peers backends`).
//!
//! The stores use the SDK's standard credential chain, which reads the process environment. A test
//! cannot set environment variables here (`unsafe` is forbidden), so each test re-runs itself in a
//! child test process with a controlled environment (see [`in_child`]): test credentials from the
//! environment, instance metadata off, no profile files.
//!
//! Coordinates are checked from the server's side (what moto lists), values by raw API calls, and
//! call counts by a counting HTTP proxy between the store and moto.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use atmos_provider::resolve::{Backend, LoadOptions, Workspace as Atmos};
use atmos_provider::sensitive::SecretValue;
use atmos_provider::store::cache::CachedStore;
use atmos_provider::store::{Location, SecretStore, StoreError, StoreSettings, registry};
use serde_json::json;
use support::peers::{Moto, STARTUP_TIMEOUT, ServerProcess, free_port, http, unique_name};
use support::*;

// ---------------------------------------------------------------------------------------------
// Harness

/// Runs the calling test in a child process with AWS test credentials (`creds`) or none, and
/// returns `true` in that child (run the body) or `false` in the parent (done: the child passed).
#[track_caller]
fn in_child(test: &str, creds: bool) -> bool {
    if std::env::var_os("TPA_AWS_CHILD").is_some() {
        return true;
    }
    run_child(test, creds.then_some(("testing", "testing")), &[]);
    false
}

/// Runs `test` alone in a child test process with only the given AWS credentials in its
/// environment (no profile files, instance metadata off) plus `extra` variables.
#[track_caller]
fn run_child(test: &str, creds: Option<(&str, &str)>, extra: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("TPA_AWS_CHILD", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        );
    if let Some((key, secret)) = creds {
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child run of {test} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The child's own notes (figures), visible with --nocapture.
    eprint!("{stderr}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Settings as the provider makes them from an `atmos.yaml` store entry.
fn settings(name: &str, options: serde_json::Value) -> StoreSettings {
    let serde_json::Value::Object(options) = options else {
        panic!("options must be an object")
    };
    StoreSettings {
        name: name.into(),
        options,
        identity: None,
    }
}

fn moto_options(endpoint: &str) -> serde_json::Value {
    json!({ "region": "us-east-1", "endpoint": endpoint })
}

fn named(n: &str) -> Location {
    Location::Named(n.to_owned())
}

fn secret(v: &str) -> SecretValue {
    SecretValue::new(v.to_owned())
}

async fn read_value(store: &dyn SecretStore, loc: &Location) -> Option<(String, Option<String>)> {
    store
        .read(loc)
        .await
        .unwrap_or_else(|e| panic!("read {loc}: {e}"))
        .map(|v| (v.value.expose().to_owned(), v.version))
}

// ---------------------------------------------------------------------------------------------
// SSM

#[test]
fn ssm_write_read_delete_and_atmos_encoding() {
    if !in_child("ssm_write_read_delete_and_atmos_encoding", true) {
        return;
    }
    let moto = Moto::start();
    runtime().block_on(async {
        // The legacy `type` spelling opens the same store.
        let legacy = registry::open("aws-ssm-parameter-store", &settings("ssm", moto_options(&moto.endpoint())))
            .await
            .expect("open legacy");
        assert_eq!(legacy.kind(), "aws/ssm");
        let store = registry::open("aws/ssm", &settings("ssm", moto_options(&moto.endpoint())))
            .await
            .expect("open aws/ssm");
        let name = format!("/{}/DB_PASSWORD", unique_name("t"));
        let loc = named(&name);

        assert!(read_value(&*store, &loc).await.is_none(), "missing reads as None");
        assert!(!store.exists(&loc).await.expect("exists"));
        assert_eq!(store.write(&loc, &secret("first")).await.expect("write"), "1");
        assert_eq!(store.write(&loc, &secret("second")).await.expect("overwrite"), "2");
        assert_eq!(
            read_value(&*store, &loc).await,
            Some(("second".into(), Some("2".into())))
        );
        assert!(store.exists(&loc).await.expect("exists"));

        // Server side: a SecureString holding the raw string.
        let raw = moto
            .aws_json("ssm", "AmazonSSM.GetParameter", &json!({"Name": name, "WithDecryption": true}))
            .json();
        assert_eq!(raw["Parameter"]["Type"], "SecureString");
        assert_eq!(raw["Parameter"]["Value"], "second");
        assert_eq!(raw["Parameter"]["Version"], 2);

        // The empty string is stored as JSON `""` (SSM refuses empty values).
        store.write(&loc, &secret("")).await.expect("write empty");
        let raw = moto
            .aws_json("ssm", "AmazonSSM.GetParameter", &json!({"Name": name, "WithDecryption": true}))
            .json();
        assert_eq!(raw["Parameter"]["Value"], "\"\"");
        assert_eq!(read_value(&*store, &loc).await.map(|v| v.0), Some(String::new()));

        // Written by "Atmos" (raw): an object as JSON text, and a plain string.
        let atmos_obj = format!("/{}/OBJ", unique_name("t"));
        let resp = moto.aws_json(
            "ssm",
            "AmazonSSM.PutParameter",
            &json!({"Name": atmos_obj, "Value": "{\"user\":\"u\",\"n\":1}", "Type": "SecureString"}),
        );
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(
            read_value(&*store, &named(&atmos_obj)).await,
            Some(("{\"user\":\"u\",\"n\":1}".into(), Some("1".into())))
        );

        // Batched read: present, missing and a duplicate, answered in order.
        let missing = named(&format!("/{}/NOPE", unique_name("t")));
        let got = store
            .read_many(&[loc.clone(), missing.clone(), named(&atmos_obj), loc.clone()])
            .await;
        let got: Vec<Option<String>> = got
            .into_iter()
            .map(|r| r.expect("batched read").map(|v| v.value.expose().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![Some(String::new()), None, Some("{\"user\":\"u\",\"n\":1}".into()), Some(String::new())]
        );

        // Versions by SSM selector, single and batched.
        let v1 = named(&format!("{name}:1"));
        assert_eq!(
            read_value(&*store, &v1).await,
            Some(("first".into(), Some("1".into())))
        );
        let batch = store.read_many(&[v1.clone(), named(&format!("{name}:2"))]).await;
        let batch: Vec<Option<String>> = batch
            .into_iter()
            .map(|r| r.expect("batched read").map(|v| v.value.expose().to_owned()))
            .collect();
        assert_eq!(batch, vec![Some("first".into()), Some("second".into())]);

        store.delete(&loc).await.expect("delete");
        assert!(read_value(&*store, &loc).await.is_none());
        assert!(!store.exists(&loc).await.expect("exists"));
        store.delete(&loc).await.expect("deleting nothing is fine");
    });
}

#[test]
fn ssm_options_are_checked() {
    if !in_child("ssm_options_are_checked", true) {
        return;
    }
    runtime().block_on(async {
        let mut opts = moto_options("http://127.0.0.1:9");
        opts["tier"] = json!("Premium");
        let err = registry::open("aws/ssm", &settings("ssm", opts))
            .await
            .err()
            .expect("bad tier");
        assert!(
            matches!(err, StoreError::Config(ref m) if m.contains("tier")),
            "{err}"
        );
        let mut opts = moto_options("http://127.0.0.1:9");
        opts["recovery_window_in_days"] = json!(3);
        let err = registry::open("aws/asm", &settings("asm", opts))
            .await
            .err()
            .expect("bad window");
        assert!(
            matches!(err, StoreError::Config(ref m) if m.contains("recovery_window_in_days")),
            "{err}"
        );
        let err = registry::open(
            "aws/ssm",
            &settings("ssm", json!({"endpoint": "http://127.0.0.1:9"})),
        )
        .await
        .err()
        .expect("no region");
        assert!(
            matches!(err, StoreError::Config(ref m) if m.contains("region")),
            "{err}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

#[test]
fn asm_write_read_delete_and_atmos_encoding() {
    if !in_child("asm_write_read_delete_and_atmos_encoding", true) {
        return;
    }
    let moto = Moto::start();
    runtime().block_on(async {
        let legacy = registry::open(
            "aws-secrets-manager",
            &settings("asm", moto_options(&moto.endpoint())),
        )
        .await
        .expect("open legacy");
        assert_eq!(legacy.kind(), "aws/asm");
        let store = registry::open("aws/asm", &settings("asm", moto_options(&moto.endpoint())))
            .await
            .expect("open aws/asm");
        let name = format!("{}/API_KEY", unique_name("t"));
        let loc = named(&name);

        assert!(read_value(&*store, &loc).await.is_none());
        assert!(!store.exists(&loc).await.expect("exists"));
        let v1 = store.write(&loc, &secret("first")).await.expect("create");
        let v2 = store.write(&loc, &secret("second")).await.expect("put");
        assert!(!v1.is_empty() && v1 != v2, "{v1} {v2}");
        assert_eq!(
            read_value(&*store, &loc).await,
            Some(("second".into(), Some(v2.clone())))
        );
        assert!(store.exists(&loc).await.expect("exists"));

        // Server side: JSON, current version is ours.
        let raw = moto
            .aws_json(
                "secretsmanager",
                "secretsmanager.GetSecretValue",
                &json!({"SecretId": name}),
            )
            .json();
        assert_eq!(raw["SecretString"], "\"second\"");
        assert_eq!(raw["VersionId"], v2.as_str());

        // Written by "Atmos" or another tool: JSON object, and raw text.
        let obj = unique_name("t-obj");
        let raw_text = unique_name("t-raw");
        for (n, v) in [(&obj, "{\"k\":\"v\"}"), (&raw_text, "plain text, not JSON")] {
            let resp = moto.aws_json(
                "secretsmanager",
                "secretsmanager.CreateSecret",
                &json!({"Name": n, "SecretString": v}),
            );
            assert_eq!(resp.status, 200, "{resp}");
        }
        assert_eq!(
            read_value(&*store, &named(&obj)).await.map(|v| v.0),
            Some("{\"k\":\"v\"}".into())
        );
        assert_eq!(
            read_value(&*store, &named(&raw_text)).await.map(|v| v.0),
            Some("plain text, not JSON".into())
        );

        // Batched: present, missing, duplicate.
        let missing = named(&unique_name("t-missing"));
        let got: Vec<Option<String>> = store
            .read_many(&[loc.clone(), missing, named(&obj), loc.clone()])
            .await
            .into_iter()
            .map(|r| {
                r.expect("batched read")
                    .map(|v| v.value.expose().to_owned())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                Some("second".into()),
                None,
                Some("{\"k\":\"v\"}".into()),
                Some("second".into())
            ]
        );

        // Delete with the default 30-day window: pending deletion reads as missing...
        store.delete(&loc).await.expect("delete");
        let raw = moto
            .aws_json(
                "secretsmanager",
                "secretsmanager.DescribeSecret",
                &json!({"SecretId": name}),
            )
            .json();
        assert!(
            raw.get("DeletedDate").is_some(),
            "scheduled, not gone: {raw}"
        );
        assert!(read_value(&*store, &loc).await.is_none());
        assert!(!store.exists(&loc).await.expect("exists"));
        assert!(
            store
                .read_many(std::slice::from_ref(&loc))
                .await
                .remove(0)
                .expect("batch")
                .is_none()
        );
        store.delete(&loc).await.expect("deleting again is fine");
        // Writing it again would restore it on AWS (CreateSecret refuses, RestoreSecret, then
        // PutSecretValue); moto accepts PutSecretValue on a deleted secret and keeps it deleted,
        // so that path cannot be shown here.
        let loc = named(&unique_name("t-force"));
        let name = loc.to_string();
        store
            .write(&loc, &secret("to be purged"))
            .await
            .expect("write");

        // recovery_window_in_days: 0 deletes at once.
        let mut opts = moto_options(&moto.endpoint());
        opts["recovery_window_in_days"] = json!(0);
        let force = registry::open("aws/asm", &settings("asm", opts))
            .await
            .expect("open");
        force.delete(&loc).await.expect("force delete");
        let resp = moto.aws_json(
            "secretsmanager",
            "secretsmanager.DescribeSecret",
            &json!({"SecretId": name}),
        );
        assert_eq!(resp.status, 404, "gone at once: {resp}");
        assert!(resp.text().contains("ResourceNotFoundException"), "{resp}");
    });
}

// ---------------------------------------------------------------------------------------------
// Coordinates, from the server's side

fn atmos_yaml(ssm_endpoint: &str, asm_endpoint: &str) -> String {
    format!(
        r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  excluded_paths: ["**/_defaults.yaml"]
  name_pattern: "{{tenant}}-{{environment}}-{{stage}}"
stores:
  ssm:
    kind: aws/ssm
    secret: true
    options: {{ region: us-east-1, endpoint: "{ssm_endpoint}", prefix: /atmos }}
  asm:
    type: aws-secrets-manager
    secret: true
    options: {{ region: us-east-1, endpoint_url: "{asm_endpoint}", prefix: app, stack_delimiter: "-" }}
"#
    )
}

const PROD_STACK: &str = r#"vars:
  tenant: plat
  environment: ue2
  stage: prod
secrets:
  vars:
    API_KEY: { store: ssm }
    ORG_TOKEN: { store: ssm, scope: global }
    WEBHOOK: { store: asm }
    LICENSE: { store: asm, scope: global }
components:
  terraform:
    api:
      secrets:
        vars:
          DB_PASSWORD: { store: ssm }
          SIGNING_KEY: { store: asm }
"#;

fn load_atmos(dir: &Path) -> Atmos {
    Atmos::load(&LoadOptions {
        cli_config_path: Some(dir.to_path_buf()),
        base_path: None,
        working_dir: dir.to_path_buf(),
    })
    .unwrap_or_else(|e| panic!("load atmos.yaml: {e}"))
}

/// The store a resolved secret names, opened as the provider opens it.
async fn open_for(atmos: &Atmos, store: &str) -> Arc<dyn SecretStore> {
    let config = atmos.store(store).expect("store declared");
    let options = serde_json::to_value(&config.options).expect("options as JSON");
    registry::open(config.kind.as_str(), &settings(store, options))
        .await
        .unwrap_or_else(|e| panic!("open {store}: {e}"))
}

#[test]
fn coordinates_match_the_contract_on_the_server() {
    if !in_child("coordinates_match_the_contract_on_the_server", true) {
        return;
    }
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("stacks")).expect("mkdir");
    std::fs::write(
        dir.path().join("atmos.yaml"),
        atmos_yaml(&moto.endpoint(), &moto.endpoint()),
    )
    .expect("write atmos.yaml");
    std::fs::write(dir.path().join("stacks/prod.yaml"), PROD_STACK).expect("write stack");
    let atmos = load_atmos(dir.path());
    runtime().block_on(async {
        let mut written = 0;
        for secret in atmos
            .declared("plat-ue2-prod", Some("api"))
            .expect("declared")
        {
            let Backend::Store { name, .. } = &secret.backend else {
                panic!("not a store secret")
            };
            let store = open_for(&atmos, name).await;
            store
                .write(
                    &secret.location,
                    &SecretValue::new(format!("value of {}", secret.name)),
                )
                .await
                .unwrap_or_else(|e| panic!("write {}: {e}", secret.name));
            written += 1;
        }
        assert_eq!(written, 6);
    });

    let listed = moto
        .aws_json(
            "ssm",
            "AmazonSSM.GetParametersByPath",
            &json!({"Path": "/atmos", "Recursive": true, "WithDecryption": true}),
        )
        .json();
    let mut ssm: Vec<(String, String)> = listed["Parameters"]
        .as_array()
        .expect("Parameters")
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().expect("Name").to_owned(),
                p["Value"].as_str().expect("Value").to_owned(),
            )
        })
        .collect();
    ssm.sort();
    assert_eq!(
        ssm,
        vec![
            ("/atmos/ORG_TOKEN".into(), "value of ORG_TOKEN".into()),
            (
                "/atmos/plat/ue2/prod/API_KEY".into(),
                "value of API_KEY".into()
            ),
            (
                "/atmos/plat/ue2/prod/api/DB_PASSWORD".into(),
                "value of DB_PASSWORD".into()
            ),
        ]
    );

    let listed = moto
        .aws_json("secretsmanager", "secretsmanager.ListSecrets", &json!({}))
        .json();
    let mut asm: Vec<String> = listed["SecretList"]
        .as_array()
        .expect("SecretList")
        .iter()
        .map(|s| s["Name"].as_str().expect("Name").to_owned())
        .collect();
    asm.sort();
    assert_eq!(
        asm,
        vec![
            "app/LICENSE",
            "app/plat/ue2/prod/WEBHOOK",
            "app/plat/ue2/prod/api/SIGNING_KEY"
        ]
    );
    let raw = moto
        .aws_json(
            "secretsmanager",
            "secretsmanager.GetSecretValue",
            &json!({"SecretId": "app/plat/ue2/prod/api/SIGNING_KEY"}),
        )
        .json();
    assert_eq!(raw["SecretString"], "\"value of SIGNING_KEY\"");
}

// ---------------------------------------------------------------------------------------------
// Call counting

/// An HTTP/1.1 forwarder on 127.0.0.1 that counts requests by `X-Amz-Target` and passes each
/// one on to the upstream port (one upstream connection per request; keep-alive towards the
/// client). Its threads live until the test process ends.
struct CountingProxy {
    port: u16,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    faults: Arc<Mutex<Faults>>,
}

/// Answers the proxy gives instead of forwarding: the next `left` requests get `status` and a
/// JSON error of type `code`.
#[derive(Default)]
struct Faults {
    left: usize,
    status: u16,
    code: String,
}

impl CountingProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let faults = Arc::new(Mutex::new(Faults::default()));
        let (shared, shared_faults) = (Arc::clone(&counts), Arc::clone(&faults));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let counts = Arc::clone(&shared);
                let faults = Arc::clone(&shared_faults);
                thread::spawn(move || forward(stream, upstream, &counts, &faults));
            }
        });
        CountingProxy {
            port,
            counts,
            faults,
        }
    }

    /// Makes the next `n` requests fail with `status` and error type `code`.
    fn fail_next(&self, n: usize, status: u16, code: &str) {
        *self.faults.lock().expect("faults") = Faults {
            left: n,
            status,
            code: code.to_owned(),
        };
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn count(&self, target: &str) -> usize {
        self.counts
            .lock()
            .expect("counts")
            .get(target)
            .copied()
            .unwrap_or(0)
    }

    fn reset(&self) {
        self.counts.lock().expect("counts").clear();
    }
}

fn forward(
    stream: TcpStream,
    upstream: u16,
    counts: &Mutex<HashMap<String, usize>>,
    faults: &Mutex<Faults>,
) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("GET").to_owned(),
            parts.next().unwrap_or("/").to_owned(),
        );
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let (n, v) = (n.trim().to_owned(), v.trim().to_owned());
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((n, v));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("{method} {path}"));
        *counts.lock().expect("counts").entry(target).or_default() += 1;
        let injected = {
            let mut f = faults.lock().expect("faults");
            (f.left > 0).then(|| {
                f.left -= 1;
                (f.status, f.code.clone())
            })
        };
        if let Some((status, code)) = injected {
            let body =
                format!("{{\"__type\":\"{code}\",\"message\":\"injected by the test proxy\"}}");
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                 x-amzn-errortype: {code}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let pass: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(n, _)| {
                !["host", "content-length", "connection", "transfer-encoding"]
                    .contains(&n.to_ascii_lowercase().as_str())
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let Ok(resp) = http(upstream, &method, &path, &pass, &body) else {
            return;
        };
        let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
        for (n, v) in &resp.headers {
            if !["content-length", "connection", "transfer-encoding"].contains(&n.as_str()) {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
        if out.write_all(head.as_bytes()).is_err() || out.write_all(&resp.body).is_err() {
            return;
        }
    }
}

fn hundred_secrets_stack() -> String {
    let mut s = String::from(
        "vars:\n  tenant: plat\n  environment: ue2\n  stage: prod\nsecrets:\n  vars:\n",
    );
    for i in 0..100 {
        s.push_str(&format!(
            "    P{i:03}: {{ store: ssm }}\n    S{i:03}: {{ store: asm }}\n"
        ));
    }
    s
}

#[test]
fn hundred_secrets_are_read_in_batches_once_each() {
    if !in_child("hundred_secrets_are_read_in_batches_once_each", true) {
        return;
    }
    let moto = Moto::start();
    let proxy = CountingProxy::start(moto.port());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("stacks")).expect("mkdir");
    // Seed directly; read through the proxy.
    std::fs::write(
        dir.path().join("atmos.yaml"),
        atmos_yaml(&moto.endpoint(), &moto.endpoint()),
    )
    .expect("write");
    std::fs::write(dir.path().join("stacks/prod.yaml"), hundred_secrets_stack()).expect("write");
    let seeding = load_atmos(dir.path());
    std::fs::write(
        dir.path().join("atmos.yaml"),
        atmos_yaml(&proxy.endpoint(), &proxy.endpoint()),
    )
    .expect("write");
    let atmos = load_atmos(dir.path());
    let declared = atmos.declared("plat-ue2-prod", None).expect("declared");
    assert_eq!(declared.len(), 200);

    runtime().block_on(async {
        for store_name in ["ssm", "asm"] {
            let direct = open_for(&seeding, store_name).await;
            let mine: Vec<_> = declared
                .iter()
                .filter(|s| s.backend.name() == store_name)
                .collect();
            assert_eq!(mine.len(), 100);
            for s in &mine {
                direct
                    .write(&s.location, &SecretValue::new(format!("v-{}", s.name)))
                    .await
                    .expect("seed");
            }
            let locations: Vec<Location> = mine.iter().map(|s| s.location.clone()).collect();
            let expected: Vec<String> = mine.iter().map(|s| format!("v-{}", s.name)).collect();

            // The provider's way: one read_many per store, then single reads served by the cache.
            proxy.reset();
            let cached = Arc::new(CachedStore::new(open_for(&atmos, store_name).await));
            let got: Vec<String> = cached
                .read_many(&locations)
                .await
                .into_iter()
                .map(|r| r.expect("read").expect("present").value.expose().to_owned())
                .collect();
            assert_eq!(got, expected);
            let mut tasks = Vec::new();
            for loc in &locations {
                let (cached, loc) = (Arc::clone(&cached), loc.clone());
                tasks.push(tokio::spawn(async move { cached.read(&loc).await }));
            }
            for t in tasks {
                t.await.expect("join").expect("read").expect("present");
            }
            let (batch, single) = match store_name {
                "ssm" => ("AmazonSSM.GetParameters", "AmazonSSM.GetParameter"),
                _ => (
                    "secretsmanager.BatchGetSecretValue",
                    "secretsmanager.GetSecretValue",
                ),
            };
            let limit = if store_name == "ssm" { 10 } else { 5 };
            eprintln!(
                "{store_name}: 100 secrets -> {} {batch} calls, {} {single} calls",
                proxy.count(batch),
                proxy.count(single)
            );
            assert!(
                proxy.count(batch) <= limit && proxy.count(batch) > 0,
                "{batch}: {}",
                proxy.count(batch)
            );
            assert_eq!(
                proxy.count(single),
                0,
                "single reads after the batch come from the cache"
            );

            // 200 concurrent single reads (each coordinate twice) in a fresh process-wide cache:
            // one backend read per coordinate.
            proxy.reset();
            let cached = Arc::new(CachedStore::new(open_for(&atmos, store_name).await));
            let mut tasks = Vec::new();
            for loc in locations.iter().chain(locations.iter()) {
                let (cached, loc) = (Arc::clone(&cached), loc.clone());
                tasks.push(tokio::spawn(async move { cached.read(&loc).await }));
            }
            for t in tasks {
                t.await.expect("join").expect("read").expect("present");
            }
            assert_eq!(proxy.count(single), 100, "{single}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn stopped_server_is_unavailable_not_a_hang() {
    if !in_child("stopped_server_is_unavailable_not_a_hang", true) {
        return;
    }
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    runtime().block_on(async move {
        let ssm = registry::open("aws/ssm", &settings("ssm", moto_options(&endpoint)))
            .await
            .expect("open");
        let asm = registry::open("aws/asm", &settings("asm", moto_options(&endpoint)))
            .await
            .expect("open");
        let loc = named(&format!("/{}", unique_name("t")));
        ssm.write(&loc, &secret("up"))
            .await
            .expect("write while up");
        drop(moto);
        for store in [&ssm, &asm] {
            let start = Instant::now();
            let err = store.read(&loc).await.expect_err("server is gone");
            let took = start.elapsed();
            assert!(
                matches!(err, StoreError::Unavailable { .. }),
                "{}: {err}",
                store.kind()
            );
            let msg = err.to_string();
            assert!(msg.contains(&loc.to_string()), "names the location: {msg}");
            assert!(
                took < Duration::from_secs(40),
                "{}: gave up after {took:?}",
                store.kind()
            );
            eprintln!("{}: unavailable after {took:?}", store.kind());
            let batch = store.read_many(std::slice::from_ref(&loc)).await;
            assert!(matches!(batch[0], Err(StoreError::Unavailable { .. })));
        }
    });
}

#[test]
fn silent_server_times_out() {
    if !in_child("silent_server_times_out", true) {
        return;
    }
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(16) {
            held.push(s);
        }
        thread::sleep(Duration::from_secs(120));
    });
    runtime().block_on(async move {
        let store = registry::open(
            "aws/ssm",
            &settings("ssm", moto_options(&format!("http://127.0.0.1:{port}"))),
        )
        .await
        .expect("open");
        let start = Instant::now();
        let err = store
            .read(&named("/silent/X"))
            .await
            .expect_err("no answer");
        let took = start.elapsed();
        eprintln!("silent server: {err} after {took:?}");
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert!(
            took < Duration::from_secs(40),
            "operation timeout not honoured: {took:?}"
        );
    });
}

#[test]
fn missing_credentials_are_an_auth_error() {
    if !in_child("missing_credentials_are_an_auth_error", false) {
        return;
    }
    // No credentials anywhere in the chain (environment, profiles; instance metadata off). The
    // request never leaves the process, so the endpoint does not matter.
    runtime().block_on(async {
        let store = registry::open(
            "aws/ssm",
            &settings("ssm", moto_options("http://127.0.0.1:9")),
        )
        .await
        .expect("open");
        let err = store
            .read(&named("/x/Y"))
            .await
            .expect_err("no credentials");
        eprintln!("no credentials: {err}");
        assert!(matches!(err, StoreError::Auth { .. }), "{err}");
        assert!(err.to_string().contains("/x/Y"), "{err}");
        let asm = registry::open(
            "aws/asm",
            &settings("asm", moto_options("http://127.0.0.1:9")),
        )
        .await
        .expect("open");
        let err = asm.read_many(&[named("a"), named("b")]).await;
        assert!(
            err.iter()
                .all(|e| matches!(e, Err(StoreError::Auth { .. }))),
            "{err:?}"
        );
    });
}

#[test]
fn assume_role_goes_through_sts() {
    if !in_child("assume_role_goes_through_sts", true) {
        return;
    }
    // moto answers STS AssumeRole with made-up credentials and does not enforce them, so this
    // proves only that the call path works: the store assumes the role and then reads.
    let moto = Moto::start();
    let proxy = CountingProxy::start(moto.port());
    runtime().block_on(async {
        let mut opts = moto_options(&proxy.endpoint());
        opts["read_role_arn"] = json!("arn:aws:iam::123456789012:role/reader");
        opts["write_role_arn"] = json!("arn:aws:iam::123456789012:role/writer");
        let store = registry::open("aws/ssm", &settings("ssm", opts))
            .await
            .expect("open");
        let loc = named(&format!("/{}", unique_name("t")));
        store.write(&loc, &secret("via role")).await.expect("write");
        assert_eq!(
            read_value(&*store, &loc).await.map(|v| v.0),
            Some("via role".into())
        );
        assert_eq!(
            proxy.count("POST /"),
            2,
            "one AssumeRole per role (form-encoded, no target)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Through OpenTofu

#[test]
fn tofu_reads_ssm_and_secrets_manager() {
    let moto = Moto::start();
    let ws = Workspace::new();
    ws.write("atmos.yaml", atmos_yaml(&moto.endpoint(), &moto.endpoint()));
    ws.write("stacks/prod.yaml", PROD_STACK);
    let (ssm_value, asm_value) = (unique_name("ssm-canary"), unique_name("asm-canary"));
    let resp = moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/atmos/plat/ue2/prod/api/DB_PASSWORD", "Value": ssm_value, "Type": "SecureString"}),
    );
    assert_eq!(resp.status, 200, "{resp}");
    let resp = moto.aws_json(
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "app/plat/ue2/prod/WEBHOOK", "SecretString": serde_json::to_string(&asm_value).expect("json")}),
    );
    assert_eq!(resp.status, 200, "{resp}");
    ws.write(
        "main.tf",
        format!(
            r#"{REQUIRED_PROVIDERS}
provider "atmos" {{}}

data "atmos_secret" "db" {{
  name      = "DB_PASSWORD"
  stack     = "plat-ue2-prod"
  component = "api"
}}

data "atmos_secret" "hook" {{
  name  = "WEBHOOK"
  stack = "plat-ue2-prod"
}}

output "db" {{
  value     = data.atmos_secret.db.value
  sensitive = true
}}

output "hook" {{
  value     = data.atmos_secret.hook.value
  sensitive = true
}}
"#
        ),
    );
    let aws = |t: Tofu| {
        t.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
    };
    ws.init().run().assert_success();
    let plan = aws(ws.plan()).run();
    plan.assert_success();
    let text = plan.combined();
    assert!(
        !text.contains(&ssm_value) && !text.contains(&asm_value),
        "value leaked into plan output"
    );
    aws(ws.apply()).run().assert_success();
    let out = ws.output_json().run();
    out.assert_success();
    let json = out.stdout_json();
    assert_eq!(json["db"]["value"], ssm_value.as_str());
    assert_eq!(json["hook"]["value"], asm_value.as_str());

    // The server goes away: a clear diagnostic naming the location, not a hang.
    drop(moto);
    let start = Instant::now();
    let failed = aws(ws.plan()).timeout(Duration::from_secs(100)).run();
    failed.assert_failure();
    let text = failed.combined();
    eprintln!(
        "tofu plan with moto stopped failed after {:?}:\n{text}",
        start.elapsed()
    );
    assert!(text.contains("unavailable"), "{text}");
    assert!(
        text.contains("/atmos/plat/ue2/prod/api/DB_PASSWORD")
            || text.contains("app/plat/ue2/prod/WEBHOOK"),
        "{text}"
    );
}

#[test]
fn tofu_atmos_secrets_reads_100_per_store_in_batches() {
    let moto = Moto::start();
    let proxy = CountingProxy::start(moto.port());
    let ws = Workspace::new();
    ws.write(
        "atmos.yaml",
        atmos_yaml(&proxy.endpoint(), &proxy.endpoint()),
    );
    ws.write("stacks/prod.yaml", hundred_secrets_stack());
    for i in 0..100 {
        let resp = moto.aws_json(
            "ssm",
            "AmazonSSM.PutParameter",
            &json!({"Name": format!("/atmos/plat/ue2/prod/P{i:03}"), "Value": format!("p{i}"), "Type": "SecureString"}),
        );
        assert_eq!(resp.status, 200, "{resp}");
        let resp = moto.aws_json(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            &json!({"Name": format!("app/plat/ue2/prod/S{i:03}"), "SecretString": format!("\"s{i}\"")}),
        );
        assert_eq!(resp.status, 200, "{resp}");
    }
    ws.write(
        "main.tf",
        format!(
            r#"{REQUIRED_PROVIDERS}
provider "atmos" {{}}

data "atmos_secrets" "all" {{
  stack = "plat-ue2-prod"
}}

output "values" {{
  value     = data.atmos_secrets.all.values
  sensitive = true
}}
"#
        ),
    );
    let aws = |t: Tofu| {
        t.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
    };
    ws.init().run().assert_success();
    proxy.reset();
    aws(ws.plan()).run().assert_success();
    let (gp, bg) = (
        proxy.count("AmazonSSM.GetParameters"),
        proxy.count("secretsmanager.BatchGetSecretValue"),
    );
    eprintln!("tofu plan, 200 declared secrets: {gp} GetParameters, {bg} BatchGetSecretValue");
    assert!(gp > 0 && gp <= 10, "GetParameters: {gp}");
    assert!(bg > 0 && bg <= 5, "BatchGetSecretValue: {bg}");
    assert_eq!(proxy.count("AmazonSSM.GetParameter"), 0);
    assert_eq!(proxy.count("secretsmanager.GetSecretValue"), 0);

    aws(ws.apply()).run().assert_success();
    let out = ws.output_json().run();
    out.assert_success();
    let values = &out.stdout_json()["values"]["value"];
    assert_eq!(values.as_object().map(|m| m.len()), Some(200), "{values}");
    assert_eq!(values["P042"], "p42");
    assert_eq!(values["S099"], "s99");
}

// ---------------------------------------------------------------------------------------------
// Credentials rejected, access denied

/// moto with IAM enforcement: after the first two actions (used to create a user and its key),
/// every request must be signed by a known key and allowed by that user's policies.
fn moto_enforcing_auth() -> (ServerProcess, u16) {
    let port = free_port();
    let dir = tempfile::Builder::new()
        .prefix("tpa-moto-auth-")
        .tempdir()
        .expect("tempdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("home");
    let mut cmd = peer_command("moto_server", &dir.path().join("home"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "2");
    let mut server = ServerProcess::spawn("moto", cmd, dir);
    server
        .wait_ready(STARTUP_TIMEOUT, || {
            http(port, "GET", "/moto-api/", &[], b"")
                .map(|r| r.status == 200)
                .map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    (server, port)
}

/// One IAM query-protocol call (unauthenticated: within moto's initial allowance).
fn iam(port: u16, body: &str) -> String {
    let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, \
                SignedHeaders=host, Signature=0";
    let resp = http(
        port,
        "POST",
        "/",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .expect("IAM call");
    assert_eq!(resp.status, 200, "{resp}");
    resp.text()
}

fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("tag present") + open.len();
    let end = xml[start..].find("</").expect("closing tag") + start;
    xml[start..end].to_owned()
}

#[test]
fn rejected_credentials_and_denied_access_are_distinct() {
    const TEST: &str = "rejected_credentials_and_denied_access_are_distinct";
    if std::env::var_os("TPA_AWS_CHILD").is_some() {
        let endpoint = std::env::var("TPA_MOTO_ENDPOINT").expect("endpoint");
        let expect = std::env::var("TPA_EXPECT").expect("expectation");
        runtime().block_on(async {
            for kind in ["aws/ssm", "aws/asm"] {
                let store = registry::open(kind, &settings("s", moto_options(&endpoint)))
                    .await
                    .expect("open");
                let loc = named("/team/DB_PASSWORD");
                let err = store.read(&loc).await.expect_err("refused");
                eprintln!("{kind} with {expect} credentials: {err}");
                let ok = match expect.as_str() {
                    "rejected" => matches!(err, StoreError::Auth { .. }),
                    _ => matches!(err, StoreError::Denied { .. }),
                };
                assert!(ok, "{kind}: expected {expect}, got {err:?}");
                assert!(err.to_string().contains("/team/DB_PASSWORD"), "{err}");
                let batch = store.read_many(std::slice::from_ref(&loc)).await;
                let ok = match expect.as_str() {
                    "rejected" => matches!(batch[0], Err(StoreError::Auth { .. })),
                    _ => matches!(batch[0], Err(StoreError::Denied { .. })),
                };
                assert!(ok, "{kind} batched: expected {expect}, got {:?}", batch[0]);
            }
        });
        return;
    }
    let (_server, port) = moto_enforcing_auth();
    iam(port, "Action=CreateUser&UserName=nobody&Version=2010-05-08");
    let key = iam(
        port,
        "Action=CreateAccessKey&UserName=nobody&Version=2010-05-08",
    );
    let (id, secret) = (
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    // A real user without any policy: denied.
    run_child(
        TEST,
        Some((&id, &secret)),
        &[("TPA_MOTO_ENDPOINT", &endpoint), ("TPA_EXPECT", "denied")],
    );
    // A key the server does not know: rejected.
    run_child(
        TEST,
        Some(("AKIAIOSFODNN7EXAMPLE", "not-a-real-secret-key")),
        &[("TPA_MOTO_ENDPOINT", &endpoint), ("TPA_EXPECT", "rejected")],
    );
}

#[test]
fn throttling_and_server_errors_are_retried_within_a_bound() {
    if !in_child(
        "throttling_and_server_errors_are_retried_within_a_bound",
        true,
    ) {
        return;
    }
    let moto = Moto::start();
    let proxy = CountingProxy::start(moto.port());
    runtime().block_on(async {
        for kind in ["aws/ssm", "aws/asm"] {
            let store = registry::open(kind, &settings("s", moto_options(&proxy.endpoint())))
                .await
                .expect("open");
            let loc = named(&format!("/{}", unique_name("t")));
            store.write(&loc, &secret("steady")).await.expect("write");
            let total = || proxy.counts.lock().expect("counts").values().sum::<usize>();
            for (status, code) in [(400, "ThrottlingException"), (500, "InternalServerError")] {
                // Two failures, then the real answer: the read succeeds on the third attempt.
                proxy.reset();
                proxy.fail_next(2, status, code);
                assert_eq!(
                    read_value(&*store, &loc).await.map(|v| v.0),
                    Some("steady".into()),
                    "{kind} after {code}"
                );
                assert_eq!(total(), 3, "{kind}: {code} retried twice");
                // Failing for good: Unavailable after exactly the attempt budget.
                proxy.reset();
                proxy.fail_next(100, status, code);
                let err = store.read(&loc).await.expect_err("keeps failing");
                eprintln!("{kind}, {code} every time: {err}");
                assert!(
                    matches!(err, StoreError::Unavailable { .. }),
                    "{kind}: {err}"
                );
                assert_eq!(total(), 4, "{kind}: {code}: bounded attempts");
                proxy.fail_next(0, 200, "");
            }
        }
    });
}
