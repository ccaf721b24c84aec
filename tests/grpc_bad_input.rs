//! Bad input at the gRPC level, sent straight to the binary (no OpenTofu in between): every bad
//! request gets diagnostics, never an RPC error or a crash, and the process keeps answering.

mod support;

use atmos_provider::protocol::proto::tfplugin6 as pb;
use pb::attribute_path::step::Selector;
use pb::provider_client::ProviderClient;
use rmpv::Value as Mp;
use support::plugin::{Plugin, connect, start};
use tonic::transport::Channel;

async fn client() -> (Plugin, ProviderClient<Channel>) {
    let plugin = start(None);
    let channel = connect(&plugin, None).await.expect("connect");
    (plugin, ProviderClient::new(channel))
}

fn msgpack(v: &Mp) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, v).expect("encode msgpack");
    buf
}

fn dynamic(bytes: Vec<u8>) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: bytes,
        json: Vec::new(),
    })
}

fn s(v: &str) -> Mp {
    Mp::String(v.into())
}

/// An `atmos_secret` configuration as OpenTofu sends it: every attribute present, computed ones
/// null. `edit` may drop or add entries.
fn secret_config(edit: impl FnOnce(&mut Vec<(Mp, Mp)>)) -> Vec<u8> {
    let mut attrs = vec![
        (s("name"), s("DB_PASSWORD")),
        (s("stack"), s("prod")),
        (s("component"), s("api")),
        (s("value"), Mp::Nil),
        (s("scope"), Mp::Nil),
        (s("store"), Mp::Nil),
        (s("description"), Mp::Nil),
    ];
    edit(&mut attrs);
    msgpack(&Mp::Map(attrs))
}

async fn read(
    client: &mut ProviderClient<Channel>,
    type_name: &str,
    config: Vec<u8>,
) -> pb::read_data_source::Response {
    client
        .read_data_source(pb::read_data_source::Request {
            type_name: type_name.to_owned(),
            config: dynamic(config),
            ..Default::default()
        })
        .await
        .expect("bad input is a diagnostic, not an RPC error")
        .into_inner()
}

fn path_names(d: &pb::Diagnostic) -> Vec<String> {
    d.attribute
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.selector {
            Some(Selector::AttributeName(n)) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// The only diagnostic, which must be an error.
#[track_caller]
fn one_error(diags: &[pb::Diagnostic]) -> &pb::Diagnostic {
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.severity, pb::diagnostic::Severity::Error as i32, "{d:#?}");
    d
}

/// The diagnostic's attribute path is exactly the top-level attribute `name`, so OpenTofu shows
/// it against that attribute.
#[track_caller]
fn names_attribute(d: &pb::Diagnostic, name: &str) {
    assert_eq!(
        path_names(d),
        [name],
        "the diagnostic does not point at `{name}`: {d:#?}"
    );
    assert!(d.summary.contains("Invalid configuration"), "{d:#?}");
}

/// The process still serves: the schema comes back.
async fn still_answers(client: &mut ProviderClient<Channel>, plugin: &mut Plugin) {
    assert!(
        plugin.child.try_wait().expect("wait").is_none(),
        "the provider process exited"
    );
    let schema = client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .expect("schema after bad input")
        .into_inner();
    assert!(schema.data_source_schemas.contains_key("atmos_secret"));
}

#[tokio::test]
async fn malformed_msgpack_is_a_diagnostic_and_the_process_lives_on() {
    let (mut plugin, mut client) = client().await;
    // A map header promising 7 entries, then garbage and a truncated string.
    let garbage = vec![0x87, 0xa4, b'n', b'a', b'm', b'e', 0xc1, 0xdb, 0xff, 0xff];
    let resp = read(&mut client, "atmos_secret", garbage).await;
    let d = one_error(&resp.diagnostics);
    assert!(resp.state.is_none());
    assert!(d.summary.contains("Invalid configuration"), "{d:#?}");
    assert!(d.detail.contains("msgpack"), "{d:#?}");
    still_answers(&mut client, &mut plugin).await;
    // A whole value followed by trailing bytes.
    let mut trailing = secret_config(|_| {});
    trailing.extend([0xc0, 0xc0]);
    let resp = read(&mut client, "atmos_secret", trailing).await;
    let d = one_error(&resp.diagnostics);
    assert!(d.detail.contains("trailing"), "{d:#?}");
    still_answers(&mut client, &mut plugin).await;
    // Invalid UTF-8 inside an attribute's string.
    let mut bad_utf8 = secret_config(|a| a[0].1 = s("XY"));
    let at = bad_utf8
        .windows(2)
        .position(|w| w == b"XY")
        .expect("the planted string");
    bad_utf8[at] = 0xff;
    let resp = read(&mut client, "atmos_secret", bad_utf8).await;
    let d = one_error(&resp.diagnostics);
    assert_eq!(path_names(d), ["name"], "{d:#?}");
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn a_string_where_an_object_is_expected() {
    let (mut plugin, mut client) = client().await;
    let resp = read(&mut client, "atmos_secret", msgpack(&s("DB_PASSWORD"))).await;
    let d = one_error(&resp.diagnostics);
    assert!(resp.state.is_none());
    assert!(d.summary.contains("Invalid configuration"), "{d:#?}");
    assert!(
        d.detail.contains("object"),
        "the diagnostic does not say an object was expected: {d:#?}"
    );
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn a_wrong_attribute_type_names_the_attribute() {
    let (mut plugin, mut client) = client().await;
    let config = secret_config(|a| a[0].1 = Mp::Array(vec![s("x")]));
    let resp = read(&mut client, "atmos_secret", config).await;
    let d = one_error(&resp.diagnostics);
    names_attribute(d, "name");
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn an_unknown_attribute_names_the_attribute() {
    let (mut plugin, mut client) = client().await;
    let config = secret_config(|a| a.push((s("surprise"), s("x"))));
    let resp = read(&mut client, "atmos_secret", config).await;
    let d = one_error(&resp.diagnostics);
    names_attribute(d, "surprise");
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn a_missing_attribute_names_the_attribute() {
    let (mut plugin, mut client) = client().await;
    let config = secret_config(|a| a.retain(|(k, _)| k.as_str() != Some("stack")));
    let resp = read(&mut client, "atmos_secret", config).await;
    let d = one_error(&resp.diagnostics);
    names_attribute(d, "stack");
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn an_unknown_type_name_lists_the_known_types() {
    let (mut plugin, mut client) = client().await;
    let resp = read(&mut client, "atmos_secret_typo", secret_config(|_| {})).await;
    let d = one_error(&resp.diagnostics);
    assert!(d.detail.contains("atmos_secret_typo"), "{d:#?}");
    // The known data sources are listed.
    assert!(
        d.detail.contains("atmos_secret,") && d.detail.contains("atmos_secrets."),
        "{d:#?}"
    );
    // The same for an ephemeral resource.
    let resp = client
        .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
            type_name: "atmos_nope".into(),
            config: dynamic(secret_config(|_| {})),
            ..Default::default()
        })
        .await
        .expect("a diagnostic, not an RPC error")
        .into_inner();
    let d = one_error(&resp.diagnostics);
    assert!(
        d.detail.contains("atmos_nope") && d.detail.contains("atmos_secret"),
        "{d:#?}"
    );
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn read_before_configure_is_a_diagnostic() {
    let (mut plugin, mut client) = client().await;
    let resp = read(&mut client, "atmos_secret", secret_config(|_| {})).await;
    let d = one_error(&resp.diagnostics);
    assert!(resp.state.is_none());
    assert!(d.summary.contains("not configured"), "{d:#?}");
    still_answers(&mut client, &mut plugin).await;
}

/// A provider configuration pointing at `dir`.
fn provider_config(dir: &std::path::Path) -> Vec<u8> {
    msgpack(&Mp::Map(vec![
        (s("cli_config_path"), s(&dir.to_string_lossy())),
        (s("base_path"), Mp::Nil),
        (s("stack"), Mp::Nil),
        (s("component"), Mp::Nil),
    ]))
}

#[tokio::test]
async fn stop_provider_answers_empty_and_later_calls_still_work() {
    // A tree that declares the secret but holds no value: a read then gets a precise diagnostic.
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "atmos.yaml",
        "base_path: \".\"\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  name_pattern: \"{stage}\"\nsecrets:\n  providers:\n    local-sops:\n      kind: sops/age\n      spec:\n        path: secrets\n        age_key_file: keys/none.agekey\n",
    );
    write(
        "stacks/prod.yaml",
        "vars:\n  stage: prod\ncomponents:\n  terraform:\n    api:\n      secrets:\n        vars:\n          DB_PASSWORD:\n            sops: local-sops\n",
    );
    let (mut plugin, mut client) = client().await;
    let stop = client
        .stop_provider(pb::stop_provider::Request {})
        .await
        .expect("StopProvider answers")
        .into_inner();
    assert_eq!(stop.error, "");
    // Configure and read after the stop: the calls run, they are not cancelled.
    let configured = client
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.12.6".into(),
            config: dynamic(provider_config(dir.path())),
            ..Default::default()
        })
        .await
        .expect("configure")
        .into_inner();
    assert!(configured.diagnostics.is_empty(), "{configured:#?}");
    let resp = read(&mut client, "atmos_secret", secret_config(|_| {})).await;
    let d = one_error(&resp.diagnostics);
    assert!(!d.summary.contains("stopped"), "{d:#?}");
    assert!(d.detail.contains("DB_PASSWORD"), "{d:#?}");
    // A second stop is answered the same way.
    let stop = client
        .stop_provider(pb::stop_provider::Request {})
        .await
        .expect("StopProvider answers twice")
        .into_inner();
    assert_eq!(stop.error, "");
    still_answers(&mut client, &mut plugin).await;
}

#[tokio::test]
async fn stop_provider_cancels_a_read_in_flight() {
    // The instance's SOPS file is a named pipe: the provider's read blocks on it until a writer
    // comes, so the read is certainly in flight when StopProvider arrives.
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    let key = support::age_keygen(&dir.path().join("keys/test.agekey"));
    write(
        "atmos.yaml",
        "base_path: \".\"\nstacks:\n  base_path: stacks\n  included_paths: [\"**/*\"]\n  name_pattern: \"{stage}\"\nsecrets:\n  providers:\n    local-sops:\n      kind: sops/age\n      spec:\n        path: secrets\n        age_key_file: keys/test.agekey\n",
    );
    write(
        "stacks/prod.yaml",
        "vars:\n  stage: prod\nsecrets:\n  vars:\n    DATADOG_API_KEY:\n      sops: local-sops\ncomponents:\n  terraform:\n    api:\n      secrets:\n        vars:\n          DB_PASSWORD:\n            sops: local-sops\n",
    );
    support::sops_encrypt_yaml(
        &key,
        "DATADOG_API_KEY: not-a-secret\n",
        &dir.path().join("secrets/prod.enc.yaml"),
    );
    let fifo = dir.path().join("secrets/prod.api.enc.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");

    let (mut plugin, mut client) = client().await;
    let configured = client
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.12.6".into(),
            config: dynamic(provider_config(dir.path())),
            ..Default::default()
        })
        .await
        .expect("configure")
        .into_inner();
    assert!(configured.diagnostics.is_empty(), "{configured:#?}");

    let mut reader = client.clone();
    let in_flight =
        tokio::spawn(async move { read(&mut reader, "atmos_secret", secret_config(|_| {})).await });
    // Opening the write end returns only once the provider has opened the pipe to read it.
    let pipe = fifo.clone();
    let writer = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(pipe)
            .expect("open the pipe")
    })
    .await
    .expect("join");
    let stop = client
        .stop_provider(pb::stop_provider::Request {})
        .await
        .expect("StopProvider answers")
        .into_inner();
    assert_eq!(stop.error, "");
    let resp = in_flight.await.expect("join");
    let d = one_error(&resp.diagnostics);
    assert!(resp.state.is_none());
    assert!(d.summary.contains("stopped"), "{d:#?}");
    // Let the blocked file read finish (EOF); its result is no longer wanted.
    drop(writer);

    // Later calls are not cancelled: the stack-scoped secret is read in full.
    let config = secret_config(|a| {
        a[0].1 = s("DATADOG_API_KEY");
        a[2].1 = Mp::Nil;
    });
    let resp = read(&mut client, "atmos_secret", config).await;
    assert!(resp.diagnostics.is_empty(), "{resp:#?}");
    assert!(resp.state.is_some());
    still_answers(&mut client, &mut plugin).await;
}
