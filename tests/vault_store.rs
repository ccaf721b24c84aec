//! The HashiCorp Vault KV v2 store (`hashicorp/vault`) against a real OpenBao dev server: values,
//! versions and deletes through `registry::open`; the layout and the coordinates checked from the
//! server's side; AppRole and namespaces; authentication, denial and an unreachable server as
//! distinct errors; and `atmos_secret` / `atmos_secret_value` through a real OpenTofu.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmos_provider::resolve::{LoadOptions, Workspace as AtmosWorkspace};
use atmos_provider::sensitive::SecretValue;
use atmos_provider::store::{Location, SecretStore, StoreError, StoreSettings, registry};
use serde_json::{Value, json};
use support::peers::{HttpResponse, OpenBao, http, unique_name};
use support::{REQUIRED_PROVIDERS, Workspace};

/// Longer than any store operation may take (one budget for open, one per call): a store that
/// hangs fails the test instead of stalling the run.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn secret(v: &str) -> SecretValue {
    SecretValue::new(v.to_owned())
}

fn named(path: &str) -> Location {
    Location::Named(path.to_owned())
}

fn settings(name: &str, options: Value) -> StoreSettings {
    StoreSettings {
        name: name.to_owned(),
        options: options.as_object().cloned().expect("options are an object"),
        identity: None,
    }
}

/// Options for the dev server with the root token, plus `extra`.
fn root_options(bao: &OpenBao, extra: Value) -> Value {
    let mut options = json!({"url": bao.endpoint(), "token": bao.root_token()});
    if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    options
}

async fn open(kind: &str, settings: &StoreSettings) -> Result<Arc<dyn SecretStore>, StoreError> {
    tokio::time::timeout(HANG_GUARD, registry::open(kind, settings))
        .await
        .expect("opening the store hung")
}

async fn open_ok(bao: &OpenBao, extra: Value) -> Arc<dyn SecretStore> {
    match open(
        "hashicorp/vault",
        &settings("vault", root_options(bao, extra)),
    )
    .await
    {
        Ok(store) => store,
        Err(e) => panic!("open: {e}\n{}", bao.process().output()),
    }
}

async fn read_value(store: &dyn SecretStore, path: &str) -> Option<(String, Option<String>)> {
    store
        .read(&named(path))
        .await
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .map(|v| (v.value.expose().to_owned(), v.version))
}

/// One raw call with `token` (and `namespace`), as a Vault CLI user would make it.
fn raw(
    bao: &OpenBao,
    token: &str,
    namespace: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> HttpResponse {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![("X-Vault-Token", token)];
    if let Some(ns) = namespace {
        headers.push(("X-Vault-Namespace", ns));
    }
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    http(bao.port(), method, path, &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[track_caller]
fn ok(resp: HttpResponse, what: &str) -> HttpResponse {
    assert!(
        (200..300).contains(&resp.status),
        "{what}: expected success, got {resp}"
    );
    resp
}

/// Every secret path under `prefix/` of `mount`, listed recursively from the server's side.
fn list_recursive(bao: &OpenBao, mount: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![format!("{}/", prefix.trim_end_matches('/'))];
    while let Some(dir) = pending.pop() {
        let resp = bao.request("LIST", &format!("/v1/{mount}/metadata/{dir}"), None);
        if resp.status == 404 {
            continue;
        }
        assert_eq!(resp.status, 200, "LIST {dir}: {resp}");
        for key in resp.json()["data"]["keys"]
            .as_array()
            .expect("LIST answers data.keys")
        {
            let key = key.as_str().expect("keys are strings");
            let full = format!("{dir}{key}");
            if key.ends_with('/') {
                pending.push(full);
            } else {
                found.insert(full);
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Values, versions, deletes

#[tokio::test]
async fn write_read_delete_and_exists_with_versions() {
    let bao = OpenBao::start();
    let store = open_ok(&bao, json!({})).await;
    assert_eq!(store.kind(), "hashicorp/vault");
    let path = format!("{}/api/DB_PASSWORD", unique_name("t"));

    assert_eq!(read_value(&*store, &path).await, None);
    assert!(!store.exists(&named(&path)).await.expect("exists"));

    let v1 = store
        .write(&named(&path), &secret("first"))
        .await
        .expect("write");
    assert_eq!(v1, "1");
    assert_eq!(
        read_value(&*store, &path).await,
        Some(("first".into(), Some("1".into())))
    );
    assert!(store.exists(&named(&path)).await.expect("exists"));

    let v2 = store
        .write(&named(&path), &secret("second"))
        .await
        .expect("write");
    assert_eq!(v2, "2");
    assert_eq!(
        read_value(&*store, &path).await,
        Some(("second".into(), Some("2".into())))
    );

    // The server holds `{"value": ...}` at <mount>/data/<path>, version 2 being current.
    let raw_get = ok(
        bao.request("GET", &format!("/v1/secret/data/{path}"), None),
        "GET",
    );
    assert_eq!(raw_get.json()["data"]["data"], json!({"value": "second"}));
    assert_eq!(raw_get.json()["data"]["metadata"]["version"], 2);

    // Delete is a soft delete of the latest version: it reads as missing, version 1 stays.
    store.delete(&named(&path)).await.expect("delete");
    assert_eq!(read_value(&*store, &path).await, None);
    assert!(!store.exists(&named(&path)).await.expect("exists"));
    let meta = ok(
        bao.request("GET", &format!("/v1/secret/metadata/{path}"), None),
        "meta",
    );
    let versions = &meta.json()["data"]["versions"];
    assert_ne!(versions["2"]["deletion_time"], "", "{meta}");
    assert_eq!(versions["1"]["deletion_time"], "", "{meta}");
    let v1_raw = ok(
        bao.request("GET", &format!("/v1/secret/data/{path}?version=1"), None),
        "GET v1",
    );
    assert_eq!(v1_raw.json()["data"]["data"]["value"], "first");

    // Deleting again, or deleting what never existed, is fine.
    store.delete(&named(&path)).await.expect("delete again");
    store
        .delete(&named("never/written"))
        .await
        .expect("delete missing");

    // Writing after a delete makes a new, readable version.
    let v3 = store
        .write(&named(&path), &secret("third"))
        .await
        .expect("write");
    assert_eq!(v3, "3");
    assert_eq!(
        read_value(&*store, &path).await,
        Some(("third".into(), Some("3".into())))
    );
}

#[tokio::test]
async fn a_destroyed_latest_version_reads_as_missing() {
    let bao = OpenBao::start();
    let store = open_ok(&bao, json!({})).await;
    let path = unique_name("destroyed");
    store
        .write(&named(&path), &secret("a"))
        .await
        .expect("write");
    store
        .write(&named(&path), &secret("b"))
        .await
        .expect("write");
    ok(
        bao.request(
            "POST",
            &format!("/v1/secret/destroy/{path}"),
            Some(&json!({"versions": [2]})),
        ),
        "destroy v2",
    );
    assert_eq!(read_value(&*store, &path).await, None);
    assert!(!store.exists(&named(&path)).await.expect("exists"));
}

#[tokio::test]
async fn destroy_option_removes_every_version_and_the_metadata() {
    let bao = OpenBao::start();
    let store = open_ok(&bao, json!({"destroy": true})).await;
    let path = unique_name("gone");
    store
        .write(&named(&path), &secret("a"))
        .await
        .expect("write");
    store
        .write(&named(&path), &secret("b"))
        .await
        .expect("write");
    store.delete(&named(&path)).await.expect("delete");
    let meta = bao.request("GET", &format!("/v1/secret/metadata/{path}"), None);
    assert_eq!(meta.status, 404, "metadata still there: {meta}");
    assert!(list_recursive(&bao, "secret", &path).is_empty());
    store.delete(&named(&path)).await.expect("delete missing");
}

#[tokio::test]
async fn reads_what_atmos_wrote_and_the_legacy_kind() {
    let bao = OpenBao::start();
    // The legacy `type` spelling opens the same store.
    let store = match open(
        "hashicorp-vault",
        &settings("legacy", root_options(&bao, json!({}))),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => panic!("open legacy kind: {e}"),
    };
    let cases = [
        ("atmos/plain", json!({"value": "plain text"}), "plain text"),
        ("atmos/empty", json!({"value": ""}), ""),
        // The server (Go) keeps objects with their keys sorted, as Atmos would print them.
        (
            "atmos/object",
            json!({"value": {"user": "u", "n": 1}}),
            r#"{"n":1,"user":"u"}"#,
        ),
        ("atmos/list", json!({"value": ["a", "b"]}), r#"["a","b"]"#),
        ("atmos/number", json!({"value": 42}), "42"),
        ("atmos/multi line", json!({"value": "l1\nl2"}), "l1\nl2"),
    ];
    for (path, data, _) in &cases {
        // A space in the path: the store must escape it as Vault's own clients do.
        let url = format!("/v1/secret/data/{}", path.replace(' ', "%20"));
        ok(
            bao.request("POST", &url, Some(&json!({"data": data}))),
            path,
        );
    }
    for (path, _, want) in &cases {
        assert_eq!(
            read_value(&*store, path).await,
            Some(((*want).to_owned(), Some("1".into()))),
            "{path}"
        );
    }
    // read_many keeps the order, one result per location, missing ones as None.
    let locations: Vec<Location> = ["atmos/list", "atmos/none", "atmos/plain"]
        .iter()
        .map(|p| named(p))
        .collect();
    let many = store.read_many(&locations).await;
    let got: Vec<Option<String>> = many
        .into_iter()
        .map(|r| r.expect("read_many").map(|v| v.value.expose().to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            Some(r#"["a","b"]"#.to_owned()),
            None,
            Some("plain text".to_owned())
        ]
    );

    // A secret someone else wrote without a `value` field: an error naming the fields, never
    // their contents.
    ok(
        bao.request(
            "POST",
            "/v1/secret/data/other/tool",
            Some(&json!({"data": {"password": "do-not-print"}})),
        ),
        "seed",
    );
    match store.read(&named("other/tool")).await {
        Err(e @ StoreError::Other { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("`value`") && msg.contains("password"), "{msg}");
            assert!(!msg.contains("do-not-print"), "{msg}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_mount_that_does_not_exist_is_not_an_empty_secret() {
    let bao = OpenBao::start();
    let store = open_ok(&bao, json!({"mount": "nokv"})).await;
    match store.read(&named("app/x")).await {
        Err(StoreError::Config(m)) => assert!(m.contains("nokv"), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert!(store.write(&named("app/x"), &secret("v")).await.is_err());
}

#[tokio::test]
async fn a_custom_mount_is_used() {
    let bao = OpenBao::start();
    ok(
        bao.request(
            "POST",
            "/v1/sys/mounts/team/kv",
            Some(&json!({"type": "kv", "options": {"version": "2"}})),
        ),
        "mount",
    );
    let store = open_ok(&bao, json!({"mount": "/team/kv/"})).await;
    store
        .write(&named("a/b"), &secret("v"))
        .await
        .expect("write");
    let got = ok(bao.request("GET", "/v1/team/kv/data/a/b", None), "GET");
    assert_eq!(got.json()["data"]["data"], json!({"value": "v"}));
    assert_eq!(bao.request("GET", "/v1/secret/data/a/b", None).status, 404);
}

// ---------------------------------------------------------------------------------------------
// Coordinates

const ATMOS_YAML: &str = r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  excluded_paths: ["**/_defaults.yaml"]
stores:
  vault:
    kind: hashicorp/vault
    secret: true
    options:
      url: "@URL@"
      token: root
      prefix: atmos
"#;

/// Stacks are named by their manifest path (no name pattern), so the stack `orgs/acme/prod` is
/// split on the default Vault `stack_delimiter` `/`.
const PROD_YAML: &str = r#"secrets:
  vars:
    API_KEY:
      store: vault
    LICENSE:
      store: vault
      scope: global
    SHARED_TOKEN:
      store: vault
      reference: shared-token
components:
  terraform:
    app/api:
      secrets:
        vars:
          DB_PASSWORD:
            store: vault
"#;

#[tokio::test]
async fn coordinates_from_the_server_side() {
    let bao = OpenBao::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("atmos.yaml", &ATMOS_YAML.replace("@URL@", &bao.endpoint()));
    write("stacks/orgs/acme/prod.yaml", PROD_YAML);
    let ws = AtmosWorkspace::load(&LoadOptions {
        cli_config_path: Some(dir.path().to_owned()),
        base_path: None,
        working_dir: dir.path().to_owned(),
    })
    .unwrap_or_else(|e| panic!("load: {e}"));
    let config = ws.store("vault").expect("store vault");
    let options = serde_json::to_value(&config.options).expect("options as JSON");
    let store = open("hashicorp/vault", &settings("vault", options))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));

    let stack = "orgs/acme/prod";
    let mut resolved = ws.declared(stack, None).expect("stack secrets");
    resolved.push(
        ws.resolve(stack, Some("app/api"), "DB_PASSWORD")
            .expect("instance"),
    );
    for s in &resolved {
        let value = format!("value of {}", s.name);
        store
            .write(&s.location, &secret(&value))
            .await
            .unwrap_or_else(|e| panic!("write {}: {e}", s.name));
    }

    let expected: BTreeSet<String> = [
        "atmos/orgs/acme/prod/API_KEY",
        "atmos/LICENSE",
        "atmos/orgs/acme/prod/shared-token",
        "atmos/orgs/acme/prod/app/api/DB_PASSWORD",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(list_recursive(&bao, "secret", "atmos"), expected);

    // Each value sits where its declaration says, in Atmos's layout.
    for (path, name) in [
        ("atmos/orgs/acme/prod/API_KEY", "API_KEY"),
        ("atmos/LICENSE", "LICENSE"),
        ("atmos/orgs/acme/prod/shared-token", "SHARED_TOKEN"),
        ("atmos/orgs/acme/prod/app/api/DB_PASSWORD", "DB_PASSWORD"),
    ] {
        let got = ok(
            bao.request("GET", &format!("/v1/secret/data/{path}"), None),
            path,
        );
        assert_eq!(
            got.json()["data"]["data"],
            json!({"value": format!("value of {name}")}),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AppRole and namespaces

const KV_RW_POLICY: &str =
    r#"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#;

/// Enables AppRole with a role `app` holding `policy`; returns (role_id, secret_id).
fn approle(bao: &OpenBao, policy: &str) -> (String, String) {
    ok(
        bao.request(
            "POST",
            "/v1/sys/auth/approle",
            Some(&json!({"type": "approle"})),
        ),
        "enable approle",
    );
    ok(
        bao.request(
            "PUT",
            "/v1/sys/policies/acl/kv-rw",
            Some(&json!({"policy": policy})),
        ),
        "policy",
    );
    ok(
        bao.request(
            "POST",
            "/v1/auth/approle/role/app",
            Some(&json!({"token_policies": ["kv-rw"], "token_ttl": "10m"})),
        ),
        "role",
    );
    let role_id = ok(
        bao.request("GET", "/v1/auth/approle/role/app/role-id", None),
        "role-id",
    )
    .json()["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_owned();
    let secret_id = ok(
        bao.request("POST", "/v1/auth/approle/role/app/secret-id", None),
        "secret-id",
    )
    .json()["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_owned();
    (role_id, secret_id)
}

#[tokio::test]
async fn approle_login_reads_and_writes() {
    let bao = OpenBao::start();
    let (role_id, secret_id) = approle(&bao, KV_RW_POLICY);
    let options = json!({
        "url": bao.endpoint(),
        "auth": "approle",
        "role_id": role_id,
        "secret_id": secret_id,
    });
    let store = open("hashicorp/vault", &settings("approle", options))
        .await
        .unwrap_or_else(|e| panic!("open with approle: {e}"));
    let path = "apps/approle/KEY";
    assert_eq!(
        store
            .write(&named(path), &secret("via approle"))
            .await
            .expect("write"),
        "1"
    );
    assert_eq!(
        read_value(&*store, path).await,
        Some(("via approle".into(), Some("1".into())))
    );
    assert!(store.exists(&named(path)).await.expect("exists"));
    let got = ok(
        bao.request("GET", &format!("/v1/secret/data/{path}"), None),
        "GET",
    );
    assert_eq!(got.json()["data"]["data"]["value"], "via approle");
    store.delete(&named(path)).await.expect("delete");
    assert_eq!(read_value(&*store, path).await, None);

    // A wrong secret id is an authentication error naming the store.
    let bad = json!({
        "url": bao.endpoint(),
        "auth": "approle",
        "role_id": role_id,
        "secret_id": "00000000-0000-0000-0000-000000000000",
    });
    match open("hashicorp/vault", &settings("approle-bad", bad)).await {
        Err(e @ StoreError::Auth { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("approle-bad") && msg.contains("AppRole"),
                "{msg}"
            );
            assert!(!msg.contains(&secret_id), "{msg}");
        }
        Err(e) => panic!("expected an authentication error, got {e}"),
        Ok(_) => panic!("a wrong secret id was accepted"),
    }
    // AppRole without its ids is a configuration error.
    let missing = json!({"url": bao.endpoint(), "auth": "approle"});
    assert!(matches!(
        open("hashicorp/vault", &settings("approle-none", missing)).await,
        Err(StoreError::Config(_))
    ));
}

#[tokio::test]
async fn namespace_option_is_honoured() {
    let bao = OpenBao::start();
    // OpenBao 2.x has namespaces in its open-source build; the dev server offers them.
    ok(
        bao.request("POST", "/v1/sys/namespaces/team1", Some(&json!({}))),
        "namespace",
    );
    ok(
        raw(
            &bao,
            "root",
            Some("team1"),
            "POST",
            "/v1/sys/mounts/secret",
            Some(&json!({"type": "kv", "options": {"version": "2"}})),
        ),
        "mount in namespace",
    );
    let store = open_ok(&bao, json!({"namespace": "team1"})).await;
    store
        .write(&named("ns/KEY"), &secret("in team1"))
        .await
        .expect("write");
    // The value is in the namespace's mount, not in the root namespace's `secret/`.
    let got = ok(
        bao.request("GET", "/v1/team1/secret/data/ns/KEY", None),
        "GET ns",
    );
    assert_eq!(got.json()["data"]["data"]["value"], "in team1");
    assert_eq!(
        bao.request("GET", "/v1/secret/data/ns/KEY", None).status,
        404
    );

    // And a value seeded in the root namespace under the same path is not what it reads.
    ok(
        bao.request(
            "POST",
            "/v1/secret/data/ns/OTHER",
            Some(&json!({"data": {"value": "root ns"}})),
        ),
        "seed root",
    );
    assert_eq!(read_value(&*store, "ns/OTHER").await, None);
    let root = open_ok(&bao, json!({})).await;
    assert_eq!(
        read_value(&*root, "ns/OTHER").await,
        Some(("root ns".into(), Some("1".into())))
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn a_bad_token_is_an_authentication_error_naming_the_store() {
    let bao = OpenBao::start();
    let options = json!({"url": bao.endpoint(), "token": "s.not-a-real-token"});
    match open("hashicorp/vault", &settings("vault-prod", options)).await {
        Err(e @ StoreError::Auth { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("vault-prod"), "{msg}");
            assert!(msg.contains("option `token`"), "{msg}");
            assert!(
                !msg.contains("s.not-a-real-token"),
                "the token leaked: {msg}"
            );
        }
        Err(e) => panic!("expected an authentication error, got {e}"),
        Ok(_) => panic!("a bad token was accepted"),
    }
}

#[tokio::test]
async fn a_policy_limited_token_is_denied_and_a_revoked_one_is_an_auth_error() {
    let bao = OpenBao::start();
    ok(
        bao.request(
            "PUT",
            "/v1/sys/policies/acl/read-allowed",
            Some(&json!({"policy": r#"path "secret/data/allowed/*" { capabilities = ["read"] }"#})),
        ),
        "policy",
    );
    let token = ok(
        bao.request(
            "POST",
            "/v1/auth/token/create",
            Some(&json!({"policies": ["read-allowed"], "ttl": "10m"})),
        ),
        "token",
    )
    .json()["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    ok(
        bao.request(
            "POST",
            "/v1/secret/data/allowed/A",
            Some(&json!({"data": {"value": "readable"}})),
        ),
        "seed",
    );
    let options = json!({"url": bao.endpoint(), "token": token});
    let store = open("hashicorp/vault", &settings("limited", options))
        .await
        .unwrap_or_else(|e| panic!("open with a limited token: {e}"));

    assert_eq!(
        read_value(&*store, "allowed/A").await,
        Some(("readable".into(), Some("1".into())))
    );
    // Metadata is not granted: exists falls back to reading the value.
    assert!(store.exists(&named("allowed/A")).await.expect("exists"));
    for result in [
        store.read(&named("forbidden/B")).await.map(drop),
        store
            .write(&named("allowed/A"), &secret("x"))
            .await
            .map(drop),
        store.delete(&named("allowed/A")).await,
    ] {
        match result {
            Err(e @ StoreError::Denied { .. }) => {
                assert!(e.to_string().contains("limited"), "{e}");
            }
            other => panic!("expected access denied, got {other:?}"),
        }
    }

    // Revoked behind the store's back: now it is the token, not the policy.
    ok(
        bao.request(
            "POST",
            "/v1/auth/token/revoke",
            Some(&json!({"token": token})),
        ),
        "revoke",
    );
    match store.read(&named("allowed/A")).await {
        Err(e @ StoreError::Auth { .. }) => assert!(e.to_string().contains("limited"), "{e}"),
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_within_the_budget() {
    let bao = OpenBao::start();
    let store = open_ok(&bao, json!({})).await;
    store
        .write(&named("up/A"), &secret("v"))
        .await
        .expect("write");
    let endpoint = bao.endpoint();
    drop(bao);

    for op in ["read", "write", "exists", "delete"] {
        let started = Instant::now();
        let result = tokio::time::timeout(HANG_GUARD, async {
            match op {
                "read" => store.read(&named("up/A")).await.map(drop),
                "write" => store.write(&named("up/A"), &secret("w")).await.map(drop),
                "exists" => store.exists(&named("up/A")).await.map(drop),
                _ => store.delete(&named("up/A")).await,
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{op} hung on a stopped server"));
        match result {
            Err(e @ StoreError::Unavailable { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("up/A") && msg.contains("\"vault\""), "{msg}");
                eprintln!("{op} on a stopped server: {:?}: {msg}", started.elapsed());
            }
            other => panic!("{op}: expected unavailable, got {other:?}"),
        }
    }

    // Opening against a server that is gone is unavailable too, naming the store.
    let options = json!({"url": endpoint, "token": "root"});
    match open("hashicorp/vault", &settings("vault", options)).await {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.to_string().contains("vault")),
        Err(e) => panic!("expected unavailable, got {e}"),
        Ok(_) => panic!("opened against a stopped server"),
    }
}

// ---------------------------------------------------------------------------------------------
// OpenTofu

const TOFU_ATMOS_YAML: &str = r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  name_pattern: "{stage}"
stores:
  vault:
    kind: hashicorp/vault
    secret: true
    options:
      url: "@URL@"
      prefix: atmos
"#;

const TOFU_PROD_YAML: &str = r#"vars:
  stage: prod
secrets:
  vars:
    SHARED:
      store: vault
components:
  terraform:
    api:
      secrets:
        vars:
          DB_PASSWORD:
            store: vault
"#;

const TOFU_MAIN: &str = r#"
provider "atmos" {}

data "atmos_secret" "shared" {
  name  = "SHARED"
  stack = "prod"
}

output "shared" {
  value     = data.atmos_secret.shared.value
  sensitive = true
}

output "shared_store" {
  value = data.atmos_secret.shared.store
}

variable "password" {
  type      = string
  ephemeral = true
}

resource "atmos_secret_value" "db" {
  name             = "DB_PASSWORD"
  stack            = "prod"
  component        = "api"
  value_wo         = var.password
  value_wo_version = 1
}
"#;

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

#[test]
fn tofu_reads_and_writes_through_the_vault_store() {
    let bao = OpenBao::start();
    let ws = Workspace::new();
    ws.write(
        "atmos.yaml",
        TOFU_ATMOS_YAML.replace("@URL@", &bao.endpoint()),
    );
    ws.write("stacks/prod.yaml", TOFU_PROD_YAML);
    ws.write("main.tf", format!("{REQUIRED_PROVIDERS}{TOFU_MAIN}"));
    let shared = unique_name("shared-canary");
    let password = unique_name("db-canary");
    // Written by "Atmos" (`atmos secret set`): {"value": ...} at prefix/stack/NAME.
    ok(
        bao.request(
            "POST",
            "/v1/secret/data/atmos/prod/SHARED",
            Some(&json!({"data": {"value": shared}})),
        ),
        "seed",
    );
    ws.init().run().assert_success();

    // No token anywhere (option, VAULT_TOKEN, ~/.vault-token): an authentication error that
    // names the store and says where a token may come from.
    let plan = ws
        .plan()
        .args(["-var", &format!("password={password}")])
        .run();
    plan.assert_failure();
    let text = plan.combined();
    assert!(
        text.contains("\"vault\"")
            && text.contains("no Vault token")
            && text.contains("VAULT_TOKEN"),
        "{plan}"
    );

    let plan = ws
        .plan()
        .args(["-var", &format!("password={password}")])
        .env("VAULT_TOKEN", bao.root_token())
        .run();
    plan.assert_success();
    assert!(plan.stdout.contains("1 to add"), "{plan}");
    assert!(
        !plan.combined().contains(&shared),
        "the value leaked into plan output"
    );

    // The apply finds the token in ~/.vault-token (HOME is the workspace's), not in the env.
    std::fs::write(
        ws.home().join(".vault-token"),
        format!("{}\n", bao.root_token()),
    )
    .expect("write ~/.vault-token");
    let apply = ws
        .apply()
        .args(["-var", &format!("password={password}")])
        .run();
    apply.assert_success();
    assert!(!apply.combined().contains(&password), "the value leaked");

    let outputs = ws.output_json().run();
    outputs.assert_success();
    let outputs = outputs.stdout_json();
    assert_eq!(outputs["shared"]["value"], json!(shared));
    assert_eq!(outputs["shared_store"]["value"], json!("vault"));

    // The write-only value landed in OpenBao, in Atmos's layout, and not in the state.
    let got = ok(
        bao.request("GET", "/v1/secret/data/atmos/prod/api/DB_PASSWORD", None),
        "GET written",
    );
    assert_eq!(got.json()["data"]["data"], json!({"value": password}));
    assert!(!file_contains(&ws.path("terraform.tfstate"), &password));
}

/// The dev server's unseal key, from what it prints at start (a moment after it answers).
fn unseal_key(bao: &OpenBao) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = bao.process().output();
        if let Some(key) = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unseal Key:"))
        {
            return key.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no unseal key in the dev server's output:\n{output}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn a_sealed_server_is_retried_then_unavailable_and_recovers_when_unsealed() {
    let bao = OpenBao::start();
    let key = unseal_key(&bao);
    let store = open_ok(&bao, json!({})).await;
    store
        .write(&named("sealed/A"), &secret("kept"))
        .await
        .expect("write");

    // Sealed, the server answers 503 to everything: retried, then reported as unavailable.
    ok(bao.request("PUT", "/v1/sys/seal", None), "seal");
    match store.read(&named("sealed/A")).await {
        Err(e @ StoreError::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("503") && msg.contains("sealed/A"), "{msg}");
            assert!(msg.contains("4 attempts"), "{msg}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    // Unsealed while a read is being retried: the retry gets the value. The unseal happens
    // right after the first attempt failed; the backoff leaves at least 1.4 s for it.
    let port = bao.port();
    let unseal = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(100));
        let body = json!({"key": key}).to_string();
        http(
            port,
            "PUT",
            "/v1/sys/unseal",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    });
    let read = store.read(&named("sealed/A")).await;
    let unsealed = unseal.await.expect("unseal task").expect("unseal call");
    assert_eq!(unsealed.status, 200, "unseal: {unsealed}");
    let got = read.unwrap_or_else(|e| panic!("read while unsealing: {e}"));
    assert_eq!(
        got.map(|v| v.value.expose().to_owned()),
        Some("kept".into())
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_budget() {
    // A listener that never accepts: connections complete in the kernel's backlog and requests
    // are never answered, as with a hung server or a black-holing firewall.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let started = Instant::now();
    let options = json!({"url": url, "token": "root"});
    match open("hashicorp/vault", &settings("hung", options)).await {
        Err(e @ StoreError::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"hung\"") && msg.contains("no answer"),
                "{msg}"
            );
            eprintln!("open against a hung server: {:?}: {msg}", started.elapsed());
        }
        Err(e) => panic!("expected unavailable, got {e}"),
        Ok(_) => panic!("opened against a server that never answers"),
    }
    drop(listener);
}

const APPROLE_ATMOS_YAML: &str = r#"base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  name_pattern: "{stage}"
stores:
  vault:
    kind: hashicorp-vault
    secret: true
    options:
      auth: approle
      prefix: atmos
"#;

#[test]
fn tofu_reads_with_approle_from_the_environment() {
    let bao = OpenBao::start();
    let (role_id, secret_id) = approle(&bao, KV_RW_POLICY);
    let ws = Workspace::new();
    ws.write("atmos.yaml", APPROLE_ATMOS_YAML);
    ws.write("stacks/prod.yaml", TOFU_PROD_YAML);
    ws.write(
        "main.tf",
        format!(
            "{REQUIRED_PROVIDERS}\nprovider \"atmos\" {{}}\n\ndata \"atmos_secret\" \"db\" {{\n  \
             name      = \"DB_PASSWORD\"\n  stack     = \"prod\"\n  component = \"api\"\n}}\n\n\
             output \"db\" {{\n  value     = data.atmos_secret.db.value\n  sensitive = true\n}}\n"
        ),
    );
    let value = unique_name("approle-canary");
    ok(
        bao.request(
            "POST",
            "/v1/secret/data/atmos/prod/api/DB_PASSWORD",
            Some(&json!({"data": {"value": value}})),
        ),
        "seed",
    );
    ws.init().run().assert_success();
    // Address, role id and secret id all from the environment; no token anywhere.
    let apply = ws
        .apply()
        .env("VAULT_ADDR", bao.endpoint())
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .run();
    apply.assert_success();
    assert!(!apply.combined().contains(&value), "the value leaked");
    let outputs = ws.output_json().run();
    outputs.assert_success();
    assert_eq!(outputs.stdout_json()["db"]["value"], json!(value));

    // Without the secret id the read fails with a diagnostic naming the store, not a hang.
    let plan = ws
        .plan()
        .args(["-refresh=true"])
        .env("VAULT_ADDR", bao.endpoint())
        .env("VAULT_ROLE_ID", &role_id)
        .run();
    plan.assert_failure();
    let text = plan.combined();
    assert!(
        text.contains("vault") && text.contains("secret_id"),
        "{plan}"
    );
}
