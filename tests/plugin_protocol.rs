//! The go-plugin side of the binary, exercised the way OpenTofu does it: the cookie, the one
//! handshake line, AutoMTLS with a P-521 client certificate, the gRPC services, and Shutdown.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use atmos_provider::protocol::proto::plugin as goplugin;
use atmos_provider::protocol::proto::tfplugin6 as pb;
use support::plugin::{COOKIE, binary, client_identity, connect, schema, start};

#[test]
fn run_by_hand_it_explains_itself_and_exits_1() {
    let out = Command::new(binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout must stay empty");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plugin for OpenTofu and Terraform"), "{err}");
}

#[test]
fn an_old_client_without_protocol_6_is_refused() {
    let out = Command::new(binary())
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("speaks only 6"));
}

#[tokio::test]
async fn plaintext_schema_and_prompt_shutdown() {
    let mut plugin = start(None);
    assert!(plugin.line.ends_with("|grpc|\n"), "{:?}", plugin.line);
    let meta = std::fs::metadata(std::path::Path::new(&plugin.socket).parent().expect("dir"))
        .expect("socket dir");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "socket dir must be private"
    );

    let channel = connect(&plugin, None).await.expect("connect");
    let resp = schema(channel.clone()).await.expect("schema");
    assert!(resp.provider.is_some());
    let caps = resp.server_capabilities.expect("capabilities");
    assert!(caps.plan_destroy && caps.get_provider_schema_optional);
    let ds = resp
        .data_source_schemas
        .get("atmos_secret")
        .expect("atmos_secret");
    let block = ds.block.as_ref().expect("block");
    let value = block
        .attributes
        .iter()
        .find(|a| a.name == "value")
        .expect("value attribute");
    assert!(value.sensitive && value.computed);
    assert!(resp.ephemeral_resource_schemas.contains_key("atmos_secret"));

    // An RPC we do not serve answers Unimplemented, which clients treat as "not supported".
    let mut client = pb::provider_client::ProviderClient::new(channel.clone());
    let err = client
        .list_resource(pb::list_resource::Request::default())
        .await
        .expect_err("unimplemented");
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    let socket_dir = std::path::PathBuf::from(&plugin.socket)
        .parent()
        .expect("dir")
        .to_path_buf();
    let mut controller = goplugin::grpc_controller_client::GrpcControllerClient::new(channel);
    let asked = Instant::now();
    let _ = controller.shutdown(goplugin::Empty {}).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(status) = plugin.child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 2 s after Shutdown"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(!socket_dir.exists(), "socket directory left behind");
}

#[tokio::test]
async fn mtls_accepts_the_pinned_p521_client_only() {
    let (pem, cert, key) = client_identity();
    let plugin = start(Some(&pem));
    assert!(
        plugin.server_cert.is_some(),
        "TLS must put the cert in the line"
    );

    // The client whose certificate is in PLUGIN_CLIENT_CERT gets in.
    let ok = connect(&plugin, Some((cert, key))).await.expect("connect");
    schema(ok).await.expect("schema over mTLS");

    // Another certificate of the same shape is refused.
    let (_, other_cert, other_key) = client_identity();
    let refused = match connect(&plugin, Some((other_cert, other_key))).await {
        Ok(ch) => schema(ch).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a foreign client certificate must be refused");

    // No certificate at all is refused.
    let refused = match connect(&plugin, None).await {
        Ok(ch) => schema(ch).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate must be refused");
}
