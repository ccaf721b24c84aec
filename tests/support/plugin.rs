//! A go-plugin client for the provider binary, shared by the gRPC-level tests: start the binary
//! the way OpenTofu does (cookie, protocol versions, optional AutoMTLS client certificate), read
//! the handshake line, and connect over the unix socket (h2c, or TLS pinned to the server
//! certificate from the line).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atmos_provider::protocol::proto::tfplugin6 as pb;
use base64::Engine;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// go-plugin's magic cookie value for Terraform providers.
pub const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// The provider binary cargo built for the tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_terraform-provider-atmos")
}

/// A client certificate shaped like go-plugin's: self-signed ECDSA P-521, CA:TRUE.
pub fn client_identity() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("cert");
    (
        cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A running provider process (killed on drop).
pub struct Plugin {
    /// The process.
    pub child: Child,
    /// The unix socket from the handshake line.
    pub socket: String,
    /// The server certificate (DER) from the handshake line, when TLS is on.
    pub server_cert: Option<Vec<u8>>,
    /// The handshake line itself.
    pub line: String,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary; with a client certificate PEM, AutoMTLS is on.
pub fn start(client_cert_pem: Option<&str>) -> Plugin {
    let mut cmd = Command::new(binary());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(pem) = client_cert_pem {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    let mut child = cmd.spawn().expect("spawn provider");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("handshake line");
    // Keep draining stdout in the background, so we can later prove it stayed silent.
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(parts.len(), 6, "handshake line: {line:?}");
    assert_eq!(&parts[..3], &["1", "6", "unix"], "{line:?}");
    assert_eq!(parts[4], "grpc");
    let server_cert = if parts[5].is_empty() {
        None
    } else {
        Some(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(parts[5])
                .expect("cert is unpadded base64"),
        )
    };
    let socket = parts[3].to_owned();
    let mut rest = String::new();
    std::thread::spawn(move || {
        let _ = reader.read_to_string(&mut rest);
        assert!(rest.is_empty(), "stdout after the handshake: {rest:?}");
    });
    Plugin {
        child,
        socket,
        server_cert,
        line,
    }
}

/// Trusts exactly one server certificate (the one from the handshake line), as go-plugin does.
#[derive(Debug)]
struct PinnedServer(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to the plugin's socket (with TLS when the handshake offered a certificate).
pub async fn connect(
    plugin: &Plugin,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<Channel, tonic::transport::Error> {
    let socket = plugin.socket.clone();
    let tls = plugin.server_cert.clone().map(|server| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer(server, provider)));
        let mut config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(vec![cert], key)
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    });
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            let tls = tls.clone();
            async move {
                let stream = UnixStream::connect(socket).await?;
                let io: Box<dyn IoStream> = match tls {
                    None => Box::new(stream),
                    Some(tls) => {
                        let name = ServerName::try_from("localhost").expect("name");
                        Box::new(tls.connect(name, stream).await?)
                    }
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        }))
        .await
}

/// A byte stream the connector can hand to hyper.
pub trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

/// `GetProviderSchema`.
pub async fn schema(channel: Channel) -> Result<pb::get_provider_schema::Response, tonic::Status> {
    let mut client = pb::provider_client::ProviderClient::new(channel);
    client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .map(|r| r.into_inner())
}
