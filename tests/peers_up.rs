//! The backend servers of `support::peers` start, answer one real request in their own protocol,
//! and are gone once their handle is dropped. A failure here means `scripts/peers` did not install
//! a peer (the message says so) or the peer changed behaviour; the store tests would fail too.

mod support;

use std::net::TcpListener;

use serde_json::json;
use support::peer_command;
use support::peers::{Moto, NotReady, OpenBao, STARTUP_TIMEOUT, ServerProcess, http, unique_name};

#[test]
fn moto_stores_ssm_secure_strings_and_secrets_manager_secrets() {
    let moto = Moto::start();
    let name = format!("/{}/db/password", unique_name("tpa"));

    let put = moto.aws_json(
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": name, "Value": "s3cr3t-ssm", "Type": "SecureString"}),
    );
    assert_eq!(put.status, 200, "PutParameter: {put}");
    assert_eq!(put.json()["Version"], 1, "PutParameter: {put}");

    let get = moto.aws_json(
        "ssm",
        "AmazonSSM.GetParameter",
        &json!({"Name": name, "WithDecryption": true}),
    );
    assert_eq!(get.status, 200, "GetParameter: {get}");
    assert_eq!(get.json()["Parameter"]["Type"], "SecureString");
    assert_eq!(get.json()["Parameter"]["Value"], "s3cr3t-ssm");

    let secret = unique_name("tpa/api-key");
    let created = moto.aws_json(
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": secret, "SecretString": "s3cr3t-sm"}),
    );
    assert_eq!(created.status, 200, "CreateSecret: {created}");
    let value = moto.aws_json(
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        &json!({"SecretId": secret}),
    );
    assert_eq!(value.status, 200, "GetSecretValue: {value}");
    assert_eq!(value.json()["SecretString"], "s3cr3t-sm");

    // Reset forgets everything: the parameter is gone afterwards.
    moto.reset();
    let gone = moto.aws_json(
        "ssm",
        "AmazonSSM.GetParameter",
        &json!({"Name": name, "WithDecryption": true}),
    );
    assert_eq!(gone.status, 400, "GetParameter after reset: {gone}");
    assert_eq!(gone.json()["__type"], "ParameterNotFound");
}

#[test]
fn openbao_dev_server_reads_back_a_kv_v2_write() {
    let bao = OpenBao::start();
    let path = format!("/v1/secret/data/{}", unique_name("app"));

    let write = bao.request(
        "POST",
        &path,
        Some(&json!({"data": {"password": "s3cr3t-kv"}})),
    );
    assert_eq!(write.status, 200, "KV v2 write: {write}");
    assert_eq!(write.json()["data"]["version"], 1);

    let read = bao.request("GET", &path, None);
    assert_eq!(read.status, 200, "KV v2 read: {read}");
    assert_eq!(read.json()["data"]["data"]["password"], "s3cr3t-kv");

    // Without a token the server refuses, so the token above is what made the read work.
    let anonymous = http(bao.port(), "GET", &path, &[], b"").expect("anonymous read");
    assert_eq!(anonymous.status, 403, "anonymous read: {anonymous}");
}

#[test]
fn dropping_a_server_stops_it() {
    let moto = Moto::start();
    let port = moto.port();
    let pid = moto.process().pid();
    assert!(http(port, "GET", "/moto-api/", &[], b"").is_ok());
    drop(moto);
    assert!(
        http(port, "GET", "/moto-api/", &[], b"").is_err(),
        "moto (pid {pid}) still answers on port {port} after its handle was dropped"
    );
}

#[test]
fn a_server_that_exits_during_startup_reports_its_own_output() {
    // Hold a port so that moto cannot bind it.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("local address").port();
    let dir = tempfile::tempdir().expect("scratch directory");
    let mut cmd = peer_command("moto_server", dir.path());
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let mut server = ServerProcess::spawn("moto", cmd, dir);
    match server.wait_ready(STARTUP_TIMEOUT, || Ok(false)) {
        Err(NotReady::Exited(message)) => assert!(
            message.contains("Address already in use") && message.contains(&port.to_string()),
            "the failure should carry moto's own stderr:\n{message}"
        ),
        other => panic!("expected moto to exit on a taken port, got {other:?}"),
    }
}
