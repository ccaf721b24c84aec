//! Running as a plugin: handshake, socket, optional mTLS, the gRPC services go-plugin expects,
//! and a prompt exit on `GRPCController.Shutdown` or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::handshake::{self, HandshakeError, SocketDir};
use super::proto::plugin as goplugin;
use super::proto::tfplugin6::provider_server::ProviderServer as GrpcProvider;
use super::server::ProviderServer;
use super::service::ProviderService;
use super::tls;

/// Largest gRPC message accepted or sent (schemas and big plans), as terraform-plugin-go does.
const MAX_MESSAGE: usize = 256 << 20;

/// Serves `provider` as a plugin until the client shuts it down. Returns the process exit code.
pub fn run<P: ProviderService>(provider: P) -> i32 {
    let cookie = std::env::var(handshake::MAGIC_COOKIE_KEY).ok();
    if handshake::check_cookie(cookie.as_deref()).is_err() {
        let _ = std::io::stderr().write_all(handshake::NOT_A_PROGRAM.as_bytes());
        return 1;
    }
    super::log::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("starting the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(provider)) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            let _ = writeln!(std::io::stderr(), "terraform-provider-atmos: {e}");
            1
        }
    }
}

/// Why serving failed before or during the handshake.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Handshake.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// gRPC transport.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

async fn serve<P: ProviderService>(provider: P) -> Result<(), ServeError> {
    let version =
        handshake::negotiate_version(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref())?;
    let parent = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let dir = SocketDir::create(parent.as_deref())?;
    let socket = dir.socket_path();
    let listener = UnixListener::bind(&socket)?;
    if let Ok(group) = std::env::var("PLUGIN_UNIX_SOCKET_GROUP")
        && !group.is_empty()
    {
        handshake::apply_socket_group(&dir, &group)?;
    }

    let tls_config = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => {
            let client = tls::parse_client_cert(&pem)?;
            let identity = tls::generate_identity()?;
            let config = tls::server_config(&identity, client)?;
            Some((identity, config))
        }
        _ => None,
    };

    let shutdown = CancellationToken::new();
    let incoming = accept_loop(listener, tls_config.as_ref().map(|(_, c)| Arc::clone(c)));

    let health = {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("plugin", tonic_health::ServingStatus::Serving)
            .await;
        service
    };
    let router = tonic::transport::Server::builder()
        .add_service(
            GrpcProvider::new(ProviderServer::new(Arc::new(provider)))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(goplugin::grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: shutdown.clone(),
            },
        ))
        .add_service(goplugin::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(goplugin::grpc_broker_server::GrpcBrokerServer::new(Broker))
        .add_service(health);

    // Exactly one line on stdout, then nothing: go-plugin reads only the first line.
    let line = handshake::handshake_line(
        version,
        &socket,
        tls_config.as_ref().map(|(id, _)| id.cert.as_ref()),
    );
    {
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
    log::debug!(
        "plugin serving protocol {version} on {} (tls: {})",
        socket.display(),
        tls_config.is_some()
    );

    let stop = {
        let shutdown = shutdown.clone();
        async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let mut int =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    Some(()) = async { match term.as_mut() { Some(s) => s.recv().await, None => None } } => break,
                    // OpenTofu relays Ctrl-C as StopProvider; like go-plugin we ignore SIGINT.
                    Some(()) = async { match int.as_mut() { Some(s) => s.recv().await, None => None } } => {
                        log::debug!("ignoring SIGINT; waiting for StopProvider or Shutdown");
                    }
                }
            }
        }
    };

    let server = router.serve_with_incoming_shutdown(incoming, stop);
    // Graceful shutdown waits for open connections; the client closes its own right after
    // Shutdown, but never wait longer than it does (2 s) before exiting.
    let drained = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        r = server => r?,
        () = drained => {}
    }
    drop(dir);
    Ok(())
}

/// Accepts connections, completing the TLS handshake (when configured) off the accept path so one
/// slow or hostile peer cannot stall the others.
fn accept_loop(
    listener: UnixListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> ReceiverStream<Result<Conn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    continue;
                }
            };
            let tx = tx.clone();
            match &acceptor {
                None => {
                    if tx.send(Ok(Conn::Plain(stream))).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let handshake = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await;
                        match handshake {
                            Ok(Ok(tls)) => {
                                let _ = tx.send(Ok(Conn::Tls(Box::new(tls)))).await;
                            }
                            Ok(Err(e)) => log::warn!("refused a TLS connection: {e}"),
                            Err(_) => log::warn!("refused a TLS connection: handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// One client connection, plain or TLS.
pub enum Conn {
    /// h2c over the unix socket.
    Plain(UnixStream),
    /// TLS over the unix socket.
    Tls(Box<tokio_rustls::server::TlsStream<UnixStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

struct Controller {
    shutdown: CancellationToken,
}

#[tonic::async_trait]
impl goplugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _req: Request<goplugin::Empty>,
    ) -> Result<Response<goplugin::Empty>, Status> {
        log::debug!("GRPCController.Shutdown: exiting");
        self.shutdown.cancel();
        Ok(Response::new(goplugin::Empty {}))
    }
}

struct Stdio;

#[tonic::async_trait]
impl goplugin::grpc_stdio_server::GrpcStdio for Stdio {
    /// We never write to stdout or stderr outside logs, so there is nothing to forward; the stream
    /// stays open (and empty) until the process exits.
    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<tonic::codegen::BoxStream<goplugin::StdioData>>, Status> {
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

struct Broker;

#[tonic::async_trait]
impl goplugin::grpc_broker_server::GrpcBroker for Broker {}
