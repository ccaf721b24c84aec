//! Harness shared by the integration tests: a real OpenTofu, sops and age (built by `scripts/peers`),
//! a throw-away workspace that installs the provider cargo built for the tests, and command runs that
//! are bounded in time and capture everything.
//!
//! Each test file says `mod support;`. Nothing here is mocked, and nothing is skipped: a missing peer
//! fails the test with a message that names `scripts/peers`.
//!
//! Every peer runs in a hermetic environment: the inherited environment is cleared, `HOME` is a
//! directory of the workspace (so no `~/.terraformrc`, `~/.terraform.d/plugins` or sops key leaks
//! in), `TF_CLI_CONFIG_FILE` names the workspace's CLI config, and HTTP(S) proxies point at a closed
//! local port so that an accidental registry lookup fails at once instead of hanging. Loopback hosts
//! are excluded from the proxy, so peers the provider talks to on 127.0.0.1 are still reachable.

// Each test file uses a different part of the harness; the rest would be reported as dead code.
#![allow(dead_code)]

/// A go-plugin gRPC client for the provider binary (tests that talk to it without OpenTofu).
pub mod plugin;

/// Secret backends (moto, OpenBao) as real servers on 127.0.0.1 for the store tests.
pub mod peers;

use std::{
    env,
    ffi::{OsStr, OsString},
    fmt, fs,
    io::Read,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// The provider's source address in every test configuration. A made-up `localhost` host keeps
/// OpenTofu and Terraform from disagreeing about the default registry, and off the network.
pub const PROVIDER_SOURCE: &str = "localhost/atmos/atmos";
/// The version the filesystem mirror offers.
pub const PROVIDER_VERSION: &str = "0.1.0";
/// How long one peer command may run before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The `required_providers` block for test configurations.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    atmos = {
      source = "localhost/atmos/atmos"
    }
  }
}
"#;

/// An address nothing listens on: proxy traffic sent there is refused at once.
const DEAD_PROXY: &str = "http://127.0.0.1:9";

// ---------------------------------------------------------------------------------------------
// Locating binaries

/// The peers cache: `$TPA_CACHE`, else `$HOME/.cache/terraform-provider-atmos` (what `scripts/peers`
/// uses).
pub fn peers_cache() -> PathBuf {
    if let Some(dir) = env::var_os("TPA_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = env::var_os("HOME").filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("neither TPA_CACHE nor HOME is set: cannot find the peers that `scripts/peers` builds")
    });
    PathBuf::from(home).join(".cache/terraform-provider-atmos")
}

/// The peer binary `name` (`tofu`, `sops`, `age`, `age-keygen`) from the peers cache.
///
/// Panics, naming `scripts/peers`, when it is missing: a test never passes without its peer.
pub fn peer(name: &str) -> PathBuf {
    let path = peers_cache().join("bin").join(name);
    assert!(
        is_executable(&path),
        "peer `{name}` is missing: {} is not an executable file.\n\
         Run `scripts/peers` (it installs every peer into $TPA_CACHE/bin, \
         default ~/.cache/terraform-provider-atmos/bin); set TPA_CACHE if you keep them elsewhere.",
        path.display()
    );
    path
}

/// The provider binary cargo built for this test run.
pub fn provider_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-atmos"));
    assert!(
        is_executable(&path),
        "provider binary {} is missing; cargo should have built it for the integration tests",
        path.display()
    );
    path
}

/// The repository root (where `Cargo.toml` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/<name>` in the repository.
pub fn example_dir(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// The platform directory name the provider registry protocol uses, e.g. `linux_amd64`.
pub fn platform() -> String {
    let os = env::consts::OS;
    let arch = match env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    format!("{os}_{arch}")
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------------------------
// Workspace

/// How OpenTofu finds the provider in a [`Workspace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// An unpacked `filesystem_mirror` holding `localhost/atmos/atmos/0.1.0/<platform>/...`;
    /// `tofu init` installs from it and writes a lock file, exactly as for a released provider.
    Mirror,
    /// `dev_overrides` pointing at a directory holding the binary: plan and apply need no init,
    /// and every command warns that overrides are in effect. The mirror is configured as well, so
    /// `tofu init` (which tries to install the overridden provider) still succeeds.
    DevOverrides,
}

/// A temporary directory laid out for running OpenTofu against the provider:
///
/// ```text
/// <root>/tofurc          CLI config (TF_CLI_CONFIG_FILE)
/// <root>/home/           HOME for every peer
/// <root>/mirror/localhost/atmos/atmos/0.1.0/<platform>/terraform-provider-atmos_v0.1.0
/// <root>/dev/terraform-provider-atmos        (Install::DevOverrides only)
/// <root>/work/           the root module: fixtures and .tf files go here; tofu runs here
/// ```
///
/// Everything is removed on drop (set `TPA_KEEP_WORKSPACE=1` to keep it for a post-mortem; its path
/// is printed).
pub struct Workspace {
    root: TempDir,
    install: Install,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// A workspace installing the provider from a filesystem mirror.
    pub fn new() -> Self {
        Self::with_install(Install::Mirror)
    }

    /// A workspace installing the provider the given way.
    pub fn with_install(install: Install) -> Self {
        let root = tempfile::Builder::new()
            .prefix("tpa-ws-")
            .tempdir()
            .expect("create a temporary workspace");
        let ws = Self { root, install };
        for dir in ["home", "work"] {
            fs::create_dir_all(ws.root().join(dir)).expect("create workspace directories");
        }
        let binary = provider_binary();
        let package = ws.mirror_package_dir();
        fs::create_dir_all(&package).expect("create the mirror package directory");
        // A hard link or copy, not a symlink: the package hash (h1:) is then taken over a stable
        // file, and a rebuild (which writes a new file) cannot change what this workspace installed.
        link_or_copy(
            &binary,
            &package.join(format!("terraform-provider-atmos_v{PROVIDER_VERSION}")),
        );
        let config = match install {
            Install::Mirror => format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = {}\n    include = [\"localhost/*/*\"]\n  }}\n  direct {{\n    exclude = [\"localhost/*/*\"]\n  }}\n}}\n",
                hcl_string(&ws.mirror_dir())
            ),
            Install::DevOverrides => {
                let dev = ws.root().join("dev");
                fs::create_dir_all(&dev).expect("create the dev_overrides directory");
                link_or_copy(&binary, &dev.join("terraform-provider-atmos"));
                // The mirror stays too, so `tofu init` still succeeds (tofu 1.12 tries to install
                // overridden providers during init and fails when no method offers them).
                format!(
                    "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = {}\n  }}\n  filesystem_mirror {{\n    path    = {}\n    include = [\"localhost/*/*\"]\n  }}\n  direct {{\n    exclude = [\"localhost/*/*\"]\n  }}\n}}\n",
                    hcl_string(&dev),
                    hcl_string(&ws.mirror_dir())
                )
            }
        };
        fs::write(ws.cli_config(), config).expect("write the CLI config");
        ws
    }

    /// How this workspace installs the provider.
    pub fn install(&self) -> Install {
        self.install
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The root module directory, where tofu runs.
    pub fn work_dir(&self) -> PathBuf {
        self.root().join("work")
    }

    /// `HOME` for every peer run from this workspace.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// The CLI config file (`TF_CLI_CONFIG_FILE`).
    pub fn cli_config(&self) -> PathBuf {
        self.root().join("tofurc")
    }

    /// The filesystem mirror root.
    pub fn mirror_dir(&self) -> PathBuf {
        self.root().join("mirror")
    }

    /// The unpacked package directory of the provider inside the mirror.
    pub fn mirror_package_dir(&self) -> PathBuf {
        self.mirror_dir()
            .join(PROVIDER_SOURCE)
            .join(PROVIDER_VERSION)
            .join(platform())
    }

    /// The absolute path of `rel` inside the work directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.work_dir().join(rel)
    }

    /// Writes `contents` to `rel` inside the work directory (parents created); returns the path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directories");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Reads `rel` inside the work directory.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.path(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Copies the contents of the fixture directory `src` (e.g. `atmos.yaml` + `stacks/`) into
    /// the work directory. Tofu state and data left in `src` (`.terraform`, lock file,
    /// `*.tfstate`) are not copied.
    pub fn copy_fixture(&self, src: impl AsRef<Path>) {
        let src = src.as_ref();
        assert!(src.is_dir(), "fixture {} is not a directory", src.display());
        copy_tree(src, &self.work_dir());
    }

    /// Copies `examples/<name>` into the work directory.
    pub fn copy_example(&self, name: &str) {
        self.copy_fixture(example_dir(name));
    }

    /// A `tofu` command with `args`, to run in the work directory in this workspace's environment.
    pub fn tofu<I, S>(&self, args: I) -> Tofu
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = peer_command("tofu", &self.home());
        cmd.current_dir(self.work_dir())
            .env("TF_CLI_CONFIG_FILE", self.cli_config())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .args(args);
        Tofu {
            cmd,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `tofu init -input=false -no-color`.
    pub fn init(&self) -> Tofu {
        self.tofu(["init", "-input=false", "-no-color"])
    }

    /// `tofu validate -no-color`.
    pub fn validate(&self) -> Tofu {
        self.tofu(["validate", "-no-color"])
    }

    /// `tofu plan -input=false -no-color`.
    pub fn plan(&self) -> Tofu {
        self.tofu(["plan", "-input=false", "-no-color"])
    }

    /// `tofu plan -input=false -no-color -out=PLAN` (`plan` relative to the work directory).
    pub fn plan_out(&self, plan: &str) -> Tofu {
        self.plan().arg(format!("-out={plan}"))
    }

    /// `tofu apply -auto-approve -input=false -no-color`.
    pub fn apply(&self) -> Tofu {
        self.tofu(["apply", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `tofu apply -input=false -no-color PLAN` (a saved plan needs no approval).
    pub fn apply_plan(&self, plan: &str) -> Tofu {
        self.tofu(["apply", "-input=false", "-no-color", plan])
    }

    /// `tofu show -no-color` (the state).
    pub fn show(&self) -> Tofu {
        self.tofu(["show", "-no-color"])
    }

    /// `tofu show -json` (the state).
    pub fn show_json(&self) -> Tofu {
        self.tofu(["show", "-json"])
    }

    /// `tofu show -json PLAN` (a saved plan).
    pub fn show_plan_json(&self, plan: &str) -> Tofu {
        self.tofu(["show", "-json", plan])
    }

    /// `tofu output -json`.
    pub fn output_json(&self) -> Tofu {
        self.tofu(["output", "-json"])
    }

    /// `tofu refresh -input=false -no-color`.
    pub fn refresh(&self) -> Tofu {
        self.tofu(["refresh", "-input=false", "-no-color"])
    }

    /// `tofu destroy -auto-approve -input=false -no-color`.
    pub fn destroy(&self) -> Tofu {
        self.tofu(["destroy", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `tofu import -input=false -no-color ADDRESS ID`.
    pub fn import(&self, address: &str, id: &str) -> Tofu {
        self.tofu(["import", "-input=false", "-no-color", address, id])
    }

    /// Generates an age key at `rel` in the work directory with the real `age-keygen`.
    pub fn age_key(&self, rel: impl AsRef<Path>) -> AgeKey {
        age_keygen(&self.path(rel))
    }

    /// Writes `plaintext_yaml` encrypted for `key` with the real `sops` at `rel` in the work
    /// directory; returns the path.
    pub fn sops_file(&self, key: &AgeKey, rel: impl AsRef<Path>, plaintext_yaml: &str) -> PathBuf {
        let path = self.path(rel);
        sops_encrypt_yaml(key, plaintext_yaml, &path);
        path
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if env::var_os("TPA_KEEP_WORKSPACE").is_some_and(|v| !v.is_empty() && v != "0") {
            self.root.disable_cleanup(true);
            eprintln!("keeping workspace {}", self.root().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// A `tofu` command being prepared; [`Tofu::run`] runs it.
pub struct Tofu {
    cmd: Command,
    timeout: Duration,
}

impl Tofu {
    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for this run (e.g. `TF_LOG_PROVIDER=trace`, `ATMOS_BASE_PATH`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable for this run.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Writes tofu's log with the provider's trace to `log_file` (`TF_LOG_PROVIDER=trace`,
    /// `TF_LOG_PATH`), leaving stdout and stderr as they are.
    pub fn provider_trace(self, log_file: impl AsRef<Path>) -> Self {
        self.env("TF_LOG_PROVIDER", "trace")
            .env("TF_LOG_PATH", log_file.as_ref())
    }

    /// Changes the time limit (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the command to completion (or kills it at the time limit and panics).
    pub fn run(self) -> RunOutput {
        run_bounded(self.cmd, self.timeout)
    }
}

/// What a finished command did.
#[derive(Debug)]
pub struct RunOutput {
    /// The command line, for messages.
    pub command: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

impl RunOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the whole output unless it exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Panics with the whole output if it exited with status 0.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "expected failure:\n{self}");
        self
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout parsed as JSON (for `show -json`, `output -json`).
    #[track_caller]
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}\n{}", self.command, self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// A command for the peer `name` with the hermetic environment described in the module docs.
pub fn peer_command(name: &str, home: &Path) -> Command {
    let mut cmd = Command::new(peer(name));
    cmd.env_clear();
    let mut path = OsString::from(peers_cache().join("bin"));
    if let Some(inherited) = env::var_os("PATH") {
        path.push(":");
        path.push(inherited);
    }
    cmd.env("PATH", path).env("HOME", home);
    for keep in [
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "RUST_BACKTRACE",
        "RUST_LOG",
        "TPA_CACHE",
    ] {
        if let Some(value) = env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env(proxy, DEAD_PROXY);
    }
    for no_proxy in ["NO_PROXY", "no_proxy"] {
        cmd.env(no_proxy, "localhost,127.0.0.1,::1");
    }
    cmd
}

/// Runs `cmd` with stdin closed, capturing stdout and stderr. At `timeout` the command's whole
/// process group (tofu and the provider it started) is killed and the call panics with what was
/// captured so far: a test never hangs.
#[track_caller]
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> RunOutput {
    let command = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so a timeout can kill the plugin processes tofu started too.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    let Some(status) = status else {
        kill_group(child.id());
        let _ = child.kill();
        let status = child.wait();
        panic!(
            "`{command}` did not finish within {timeout:?} and was killed ({status:?})\n\
             --- stdout ---\n{}\n--- stderr ---\n{}",
            collect(stdout),
            collect(stderr)
        );
    };
    RunOutput {
        command,
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn collect(rx: mpsc::Receiver<Vec<u8>>) -> String {
    // A grandchild that outlives the command could keep the pipe open; do not wait for it forever.
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => {
            "(output incomplete: the pipe was still open 10 s after the command ended)".into()
        }
    }
}

fn kill_group(pid: u32) {
    // std has no killpg; the kill(1) utility does it without adding a dependency.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// age and sops

/// An age key pair generated by the real `age-keygen`.
#[derive(Clone, Debug)]
pub struct AgeKey {
    /// The identity file (`AGE-SECRET-KEY-...`), usable as `SOPS_AGE_KEY_FILE` or `age_key_file`.
    pub identity_file: PathBuf,
    /// The public recipient (`age1...`).
    pub recipient: String,
}

/// Generates a new age key at `path` (which must not exist yet) with the real `age-keygen`.
#[track_caller]
pub fn age_keygen(path: &Path) -> AgeKey {
    assert!(
        !path.exists(),
        "{} already exists; age-keygen will not overwrite it",
        path.display()
    );
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create the key's directory");
    }
    let scratch = scratch_dir();
    let mut cmd = peer_command("age-keygen", scratch.path());
    cmd.arg("-o").arg(path);
    run_bounded(cmd, DEFAULT_TIMEOUT).assert_success();
    let mut cmd = peer_command("age-keygen", scratch.path());
    cmd.arg("-y").arg(path);
    let out = run_bounded(cmd, DEFAULT_TIMEOUT);
    out.assert_success();
    let recipient = out.stdout.trim().to_owned();
    assert!(
        recipient.starts_with("age1"),
        "unexpected recipient from age-keygen -y:\n{out}"
    );
    AgeKey {
        identity_file: path.to_owned(),
        recipient,
    }
}

/// Encrypts `plaintext_yaml` for `key` with the real `sops` and writes the result to `dest`
/// (parents created, an existing file replaced).
#[track_caller]
pub fn sops_encrypt_yaml(key: &AgeKey, plaintext_yaml: &str, dest: &Path) {
    let scratch = scratch_dir();
    let plain = scratch.path().join("plain.yaml");
    fs::write(&plain, plaintext_yaml).expect("write the plaintext");
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).expect("create the destination directory");
    }
    let mut cmd = peer_command("sops", scratch.path());
    // The scratch directory holds no .sops.yaml, so only the flags decide how to encrypt.
    cmd.current_dir(scratch.path())
        .env("SOPS_AGE_KEY_FILE", &key.identity_file)
        .args(["--encrypt", "--age", &key.recipient])
        .args(["--input-type", "yaml", "--output-type", "yaml", "--output"])
        .arg(dest)
        .arg(&plain);
    run_bounded(cmd, DEFAULT_TIMEOUT).assert_success();
}

/// Decrypts the SOPS YAML file `path` with the real `sops` and `key`; returns the plaintext YAML.
#[track_caller]
pub fn sops_decrypt(key: &AgeKey, path: &Path) -> String {
    let scratch = scratch_dir();
    let mut cmd = peer_command("sops", scratch.path());
    cmd.current_dir(scratch.path())
        .env("SOPS_AGE_KEY_FILE", &key.identity_file)
        .args(["--decrypt", "--input-type", "yaml", "--output-type", "yaml"])
        .arg(path);
    let out = run_bounded(cmd, DEFAULT_TIMEOUT);
    out.assert_success();
    out.stdout
}

/// An existing age key: `identity_file` and the recipient `age-keygen -y` derives from it.
#[track_caller]
pub fn age_key_from_file(identity_file: &Path) -> AgeKey {
    let scratch = scratch_dir();
    let mut cmd = peer_command("age-keygen", scratch.path());
    cmd.arg("-y").arg(identity_file);
    let out = run_bounded(cmd, DEFAULT_TIMEOUT);
    out.assert_success();
    AgeKey {
        identity_file: identity_file.to_owned(),
        recipient: out.stdout.trim().to_owned(),
    }
}

fn scratch_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("tpa-scratch-")
        .tempdir()
        .expect("create a scratch directory")
}

// ---------------------------------------------------------------------------------------------
// Files

fn copy_file(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

fn link_or_copy(from: &Path, to: &Path) {
    if fs::hard_link(from, to).is_err() {
        copy_file(from, to);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == ".terraform"
            || name_str == ".terraform.lock.hcl"
            || name_str.ends_with(".tfstate")
            || name_str.ends_with(".tfstate.backup")
        {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            copy_file(&src, &dst);
        }
    }
}

/// `path` as an HCL string literal (JSON string syntax is valid HCL for paths).
fn hcl_string(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).expect("a string serialises to JSON")
}
