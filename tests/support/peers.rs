//! Secret backends as real servers for the store tests: moto (AWS SSM Parameter Store and Secrets
//! Manager) and an OpenBao dev server (HashiCorp Vault KV v2), both installed by `scripts/peers`.
//!
//! Each server is a child process in its own process group, listening on free 127.0.0.1 ports
//! picked at start. `start()` waits (bounded) until the server answers a real request and panics
//! with everything the server printed if it does not; dropping the handle kills the whole group,
//! also when the test panics. A missing peer fails the test with a message naming `scripts/peers`.
//!
//! Servers keep their data in memory. Tests sharing one server must not depend on each other's
//! data: use unique names (see [`unique_name`]) or the server's reset call.
//!
//! [`http`] is a minimal HTTP/1.1 client over a std `TcpStream`, enough to probe readiness and to
//! seed or inspect data in the raw protocols; the stores under test use their own clients.

use std::{
    fmt, fs,
    io::{self, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use std::os::unix::process::CommandExt;

use tempfile::TempDir;

use super::{kill_group, peer_command};

/// How long a server may take from spawn to answering its readiness probe. Generous: CI machines
/// are small and busy (moto needs ~4 s and OpenBao ~1 s on an idle 2-core machine).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a server is started again with new ports when it exits during startup (a port
/// picked free was taken by someone else before the server bound it).
const START_ATTEMPTS: usize = 3;
/// Time limit for one request of [`http`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Ports

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read back, released.
/// Another process may take it before the server binds it; [`ServerProcess`] users retry.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"))
}

/// Two consecutive free ports `p` and `p + 1` (OpenBao's dev server puts its cluster listener on
/// the API port + 1).
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
        let port = first
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("found no two consecutive free ports on 127.0.0.1 in 100 tries");
}

/// A name no other test in this run (or a recent run) uses: `prefix-<pid>-<counter>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A running server: a child process (and its process group) with stdout and stderr captured
/// to files. Killed on drop.
pub struct ServerProcess {
    name: String,
    command: String,
    child: Child,
    dir: TempDir,
}

impl ServerProcess {
    /// Spawns `cmd` for the peer `name` in its own process group, stdin closed, output captured
    /// in `dir` (which the handle keeps alive; the command usually has its `HOME` there too).
    pub fn spawn(name: &str, mut cmd: Command, dir: TempDir) -> Self {
        let command = describe(&cmd);
        let stdout = fs::File::create(dir.path().join("stdout.log")).expect("create stdout.log");
        let stderr = fs::File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (`{command}`): {e}"));
        Self {
            name: name.to_owned(),
            command,
            child,
            dir,
        }
    }

    /// The peer's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The scratch directory of this server (logs; `home/` where the server uses one).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The exit status if the server has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the server printed so far, for failure messages.
    pub fn output(&self) -> String {
        let read = |file: &str| {
            fs::read(self.dir.path().join(file))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("(cannot read {file}: {e})"))
        };
        format!(
            "$ {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            read("stdout.log"),
            read("stderr.log")
        )
    }

    /// Polls `probe` until it returns `Ok(true)`. Fails with the server's output when the
    /// server exits (`Exited`) or `timeout` passes (`TimedOut`). `probe` errors are kept as the
    /// last reason and retried.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<bool, String>,
    ) -> Result<Duration, NotReady> {
        let start = Instant::now();
        let mut last = String::from("no probe yet");
        loop {
            if let Some(status) = self.exited() {
                return Err(NotReady::Exited(format!(
                    "{} exited during startup ({status}); last probe: {last}\n{}",
                    self.name,
                    self.output()
                )));
            }
            match probe() {
                Ok(true) => return Ok(start.elapsed()),
                Ok(false) => last = "not ready yet".into(),
                Err(e) => last = e,
            }
            if start.elapsed() >= timeout {
                return Err(NotReady::TimedOut(format!(
                    "{} did not become ready within {timeout:?}; last probe: {last}\n{}",
                    self.name,
                    self.output()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            kill_group(self.child.id());
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Why a server did not come up.
#[derive(Debug)]
pub enum NotReady {
    /// It exited: typically a port taken between picking and binding; worth a retry.
    Exited(String),
    /// It kept running but never answered.
    TimedOut(String),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(m) | Self::TimedOut(m) => f.write_str(m),
        }
    }
}

/// Starts a server with `launch` (fresh ports each time) and waits for it; a server that exits
/// during startup is started again, up to [`START_ATTEMPTS`] times. Panics with the server's
/// output when it never comes up.
#[track_caller]
fn start_with_retry<T>(
    name: &str,
    mut launch: impl FnMut() -> (ServerProcess, T),
) -> (ServerProcess, T)
where
    T: Ready,
{
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let (mut process, target) = launch();
        match process.wait_ready(STARTUP_TIMEOUT, || target.probe()) {
            Ok(_) => return (process, target),
            Err(NotReady::Exited(m)) => failures.push(m),
            Err(NotReady::TimedOut(m)) => panic!("{m}"),
        }
    }
    panic!(
        "{name} exited during startup {START_ATTEMPTS} times:\n{}",
        failures.join("\n\n")
    );
}

/// A readiness probe for a server that was just spawned.
trait Ready {
    fn probe(&self) -> Result<bool, String>;
}

fn scratch(name: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("tpa-{name}-"))
        .tempdir()
        .expect("create a scratch directory for a server");
    fs::create_dir_all(dir.path().join("home")).expect("create the server's HOME");
    dir
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

// ---------------------------------------------------------------------------------------------
// moto

/// A moto server (`moto_server`, from `scripts/peers moto`) standing in for AWS SSM Parameter
/// Store and Secrets Manager. Any region and credentials work; moto checks no signature, but it
/// routes a request to a service by the `Credential=.../REGION/SERVICE/aws4_request` scope of the
/// `Authorization` header, so every request needs one (SigV4-signed SDK requests have it).
pub struct Moto {
    process: ServerProcess,
    port: u16,
}

struct MotoTarget(u16);

impl Ready for MotoTarget {
    fn probe(&self) -> Result<bool, String> {
        let resp = http(self.0, "GET", "/moto-api/", &[], b"").map_err(|e| e.to_string())?;
        Ok(resp.status == 200)
    }
}

impl Moto {
    /// Starts moto on a free 127.0.0.1 port and waits until it answers.
    #[track_caller]
    pub fn start() -> Self {
        let (process, MotoTarget(port)) = start_with_retry("moto", || {
            let port = free_port();
            let dir = scratch("moto");
            let mut cmd = peer_command("moto_server", &dir.path().join("home"));
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            (ServerProcess::spawn("moto", cmd, dir), MotoTarget(port))
        });
        Self { process, port }
    }

    /// The endpoint URL for AWS clients, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process (pid, output).
    pub fn process(&self) -> &ServerProcess {
        &self.process
    }

    /// Forgets every resource in every service (`POST /moto-api/reset`).
    #[track_caller]
    pub fn reset(&self) {
        let resp = http(self.port, "POST", "/moto-api/reset", &[], b"")
            .unwrap_or_else(|e| panic!("moto reset failed: {e}"));
        assert_eq!(resp.status, 200, "moto reset: {resp}");
    }

    /// One call in the AWS JSON 1.1 protocol: `POST /` with `X-Amz-Target: TARGET` (e.g.
    /// `AmazonSSM.PutParameter`, `secretsmanager.GetSecretValue`) and an unsigned `Authorization`
    /// header scoped to `service` (`ssm`, `secretsmanager`) in `us-east-1`.
    #[track_caller]
    pub fn aws_json(&self, service: &str, target: &str, body: &serde_json::Value) -> HttpResponse {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let body = serde_json::to_vec(body).expect("JSON serialises");
        http(
            self.port,
            "POST",
            "/",
            &[
                ("Authorization", auth.as_str()),
                ("X-Amz-Target", target),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            &body,
        )
        .unwrap_or_else(|e| panic!("moto {target} failed: {e}\n{}", self.process.output()))
    }
}

// ---------------------------------------------------------------------------------------------
// OpenBao

/// An OpenBao dev server (`bao server -dev`, from `scripts/peers openbao`) standing in for
/// HashiCorp Vault: plain HTTP, in-memory storage, unsealed, KV v2 mounted at `secret/`, root
/// token [`OpenBao::ROOT_TOKEN`]. Its cluster listener takes the API port + 1.
pub struct OpenBao {
    process: ServerProcess,
    port: u16,
}

struct OpenBaoTarget(u16);

impl Ready for OpenBaoTarget {
    fn probe(&self) -> Result<bool, String> {
        // Health alone can answer before the dev server has mounted `secret/`.
        let resp = http(
            self.0,
            "GET",
            "/v1/sys/mounts/secret/tune",
            &[("X-Vault-Token", OpenBao::ROOT_TOKEN)],
            b"",
        )
        .map_err(|e| e.to_string())?;
        Ok(resp.status == 200)
    }
}

impl OpenBao {
    /// The dev server's root token.
    pub const ROOT_TOKEN: &'static str = "root";

    /// Starts the dev server on free 127.0.0.1 ports and waits until `secret/` is mounted.
    #[track_caller]
    pub fn start() -> Self {
        let (process, OpenBaoTarget(port)) = start_with_retry("openbao", || {
            let port = free_port_pair();
            let dir = scratch("openbao");
            let mut cmd = peer_command("bao", &dir.path().join("home"));
            cmd.args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={}", Self::ROOT_TOKEN),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-no-store-token",
            ]);
            (
                ServerProcess::spawn("openbao", cmd, dir),
                OpenBaoTarget(port),
            )
        });
        Self { process, port }
    }

    /// The address for Vault clients (`VAULT_ADDR`), e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (`X-Vault-Token`).
    pub fn root_token(&self) -> &'static str {
        Self::ROOT_TOKEN
    }

    /// The server process (pid, output).
    pub fn process(&self) -> &ServerProcess {
        &self.process
    }

    /// One API call with the root token, e.g. `request("POST", "/v1/secret/data/app",
    /// Some(&json!({"data": {"k": "v"}})))`.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> HttpResponse {
        let body = body
            .map(|b| serde_json::to_vec(b).expect("JSON serialises"))
            .unwrap_or_default();
        let mut headers = vec![("X-Vault-Token", Self::ROOT_TOKEN)];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        http(self.port, method, path, &headers, &body).unwrap_or_else(|e| {
            panic!(
                "openbao {method} {path} failed: {e}\n{}",
                self.process.output()
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A response of [`http`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (n, v) in &self.headers {
            writeln!(f, "{n}: {v}")?;
        }
        write!(f, "\n{}", self.text())
    }
}

/// One HTTP/1.1 request to `127.0.0.1:port` with `Connection: close`, read to the end.
/// `Host` and `Content-Length` are added.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parses a whole HTTP/1.1 response (the connection was closed after it).
pub fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no end of headers in {} bytes", raw.len())))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| invalid("chunk size is not UTF-8"))?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(invalid("truncated chunk"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
