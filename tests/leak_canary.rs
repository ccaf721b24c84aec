//! Leak canaries: for every backend and every way a value travels through the provider, plant a
//! unique value, drive a real OpenTofu through its whole life cycle with trace logs on (the
//! provider's and OpenTofu's own), and look for the value in everything that was written down.
//!
//! Paths: `data "atmos_secret"`, `data "atmos_secrets"`, `ephemeral "atmos_secret"` (consumed by a
//! write-only argument), `resource "atmos_secret_value"` with `value`, and with `value_wo`. Steps:
//! `init`, `plan -out=tfplan`, `show -json tfplan`, `apply tfplan`, `show -json`, `show`,
//! `refresh`, `plan -detailed-exitcode` (must be a no-op), for the resource paths a rotation to a
//! second canary (plan, show, apply, no-op plan), and `destroy`, after which a value the
//! configuration wrote must be gone from the backend.
//!
//! Artifacts searched after every step: the step's stdout, stderr and trace log, every file under
//! the workspace (state and its backups, the saved plan and each member of its zip archive, the
//! backend's files, anything tofu left in `.terraform/` or `HOME`; not the provider binaries), and
//! the output of `show -json` for the plan and the state. The canary is searched in plain text, hex,
//! decimal bytes (`{:?}` of a byte slice, JSON arrays) and base64 (standard and URL-safe, at every
//! alignment). The backend's credentials (age identities, the Vault token, the AWS secret key) are
//! searched for the same way and may appear only in their own files (one handed over in the
//! environment: nowhere).
//!
//! Where the value may appear: only in state-bearing artifacts (state files, the saved plan, `show
//! -json`) and only for the paths where OpenTofu keeps sensitive values by design: the data sources
//! and the resource's `value` argument. For the ephemeral and `value_wo` paths it may appear nowhere.
//! Error paths (a value the provider may not read, a corrupt value, undeclared name, stack-scoped
//! write with a component, failing backend write, refresh and delete, malformed or revoked
//! credentials) are held to the same rules; only a `value` that came in through a sensitive
//! variable may sit in the errored plan OpenTofu saves.
//!
//! A backend is one entry in [`backends`]: something that configures itself in `atmos.yaml`, plants
//! values, reads them back with its own tools, and can be made to fail. Backends: SOPS files (real
//! `sops`), Vault KV v2 (a real OpenBao dev server), AWS SSM Parameter Store and Secrets Manager
//! (a real moto server). A scenario a backend's server cannot stage is skipped for that backend
//! only, with the reason ([`Backend::cannot_stage`]).

mod support;

use std::{
    fmt, fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use base64::Engine as _;
use support::*;

// ---------------------------------------------------------------------------------------------
// Backends

/// Where a secret lives, in Atmos terms.
#[derive(Clone, Copy, Debug)]
struct Coord {
    stack: &'static str,
    component: Option<&'static str>,
    name: &'static str,
}

/// An instance-scoped secret of `api` in `prod`.
const fn instance(name: &'static str) -> Coord {
    Coord {
        stack: "prod",
        component: Some("api"),
        name,
    }
}

/// A stack-scoped secret of `prod`.
const fn stack_scoped(name: &'static str) -> Coord {
    Coord {
        stack: "prod",
        component: None,
        name,
    }
}

/// A secret backend under test: how to configure it and how to reach its storage directly.
trait Backend {
    /// Short name for messages.
    fn name(&self) -> &'static str;
    /// Prepares the backend in the workspace (keys, directories) and returns what the test needs.
    fn setup(&self, ws: &Workspace) -> Box<dyn Fixture>;
    /// Error scenarios the backend's server cannot stage, each with the reason.
    fn cannot_stage(&self) -> &'static [(Staging, &'static str)] {
        &[]
    }
}

/// Error scenarios that need the backend's help to stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Staging {
    /// [`Fixture::plant_unreadable`].
    Unreadable,
    /// [`Fixture::plant_corrupt`].
    Corrupt,
    /// [`Fixture::break_credentials`].
    Credentials,
}

/// Whether `backend` can stage `scenario`; says why not on stderr when it cannot.
fn can_stage(backend: &dyn Backend, scenario: Staging) -> bool {
    match backend.cannot_stage().iter().find(|(s, _)| *s == scenario) {
        Some((_, why)) => {
            eprintln!("[{}] skipping {scenario:?}: {why}", backend.name());
            false
        }
        None => true,
    }
}

/// One backend set up in one workspace.
trait Fixture {
    /// Top-level `atmos.yaml` keys that configure the backend (e.g. `secrets.providers`).
    fn atmos_yaml(&self) -> String;
    /// The declaration fields that point a secret at this backend, as a YAML flow map body
    /// (e.g. `sops: canary-sops`).
    fn declaration(&self) -> String;
    /// Stores `value` at `at` with the backend's own tools, as an operator would.
    fn plant(&self, ws: &Workspace, at: Coord, value: &str);
    /// Stores `value` at `at` where the provider's credentials cannot read it.
    fn plant_unreadable(&self, ws: &Workspace, at: Coord, value: &str);
    /// Stores `value` at `at` in a form the backend rejects as corrupt (integrity failure).
    fn plant_corrupt(&self, ws: &Workspace, at: Coord, value: &str);
    /// Makes every write (and delete) at `at` fail, whether or not it holds a value.
    fn break_writes(&self, ws: &Workspace, at: Coord);
    /// The value at `at`, read with the backend's own tools (`None`: no value).
    fn stored(&self, ws: &Workspace, at: Coord) -> Option<String>;
    /// The backend's credentials as they are now, searched for like canaries.
    fn credentials(&self, ws: &Workspace) -> Vec<Credential>;
    /// Makes the provider's credentials unusable: malformed ones containing `bogus`, or (where
    /// the server checks them) revoked ones. The provider must reject them without repeating them.
    fn break_credentials(&self, ws: &Workspace, bogus: &str);
    /// Environment variables every tofu command gets (credentials handed over the way an operator
    /// would; the harness clears the rest of the environment).
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Secret material of a backend (a key, a token) that must never leave its own file.
struct Credential {
    /// What it is, for messages.
    label: String,
    /// The secret text.
    secret: String,
    /// Its file, relative to the workspace root (as artifacts are labelled); `None` for one that
    /// only travels in the environment and so may appear in no artifact at all.
    home: Option<String>,
}

/// Every backend the suite covers. Adding one is one more entry here. `LEAK_CANARY_BACKENDS`
/// (names, comma-separated) narrows the run while working on one backend.
fn backends() -> Vec<Box<dyn Backend>> {
    let all: Vec<Box<dyn Backend>> = vec![
        Box::new(Sops),
        Box::new(Vault),
        Box::new(Aws::Ssm),
        Box::new(Aws::Asm),
    ];
    match std::env::var("LEAK_CANARY_BACKENDS") {
        Ok(only) if !only.trim().is_empty() => all
            .into_iter()
            .filter(|b| only.split(',').any(|n| n.trim() == b.name()))
            .collect(),
        _ => all,
    }
}

/// SOPS files encrypted with age, read and written by the real `sops`.
struct Sops;

struct SopsFixture {
    /// The key the provider is configured with.
    key: AgeKey,
    /// A key the provider does not hold.
    foreign: AgeKey,
    /// A directory made read-only by `break_writes`, made writable again on drop so that the
    /// workspace can be removed.
    read_only: std::cell::RefCell<Option<PathBuf>>,
}

impl Drop for SopsFixture {
    fn drop(&mut self) {
        if let Some(dir) = self.read_only.get_mut().take() {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
        }
    }
}

impl Backend for Sops {
    fn name(&self) -> &'static str {
        "sops"
    }

    fn setup(&self, ws: &Workspace) -> Box<dyn Fixture> {
        fs::create_dir_all(ws.path("secrets")).expect("create the secrets directory");
        Box::new(SopsFixture {
            key: ws.age_key("keys/provider.agekey"),
            // Outside the work directory: the provider must have no way to find it.
            foreign: age_keygen(&ws.root().join("foreign/foreign.agekey")),
            read_only: Default::default(),
        })
    }
}

impl SopsFixture {
    fn rel_file(at: Coord) -> String {
        match at.component {
            Some(c) => format!("secrets/{}.{c}.enc.yaml", at.stack),
            None => format!("secrets/{}.enc.yaml", at.stack),
        }
    }

    /// The plaintext of the file holding `at` (empty when there is none yet), decrypted with the
    /// real sops.
    fn plaintext(&self, ws: &Workspace, at: Coord) -> serde_yaml_ng::Mapping {
        let file = ws.path(Self::rel_file(at));
        if !file.is_file() {
            return serde_yaml_ng::Mapping::new();
        }
        let text = sops_decrypt(&self.key, &file);
        serde_yaml_ng::from_str::<Option<serde_yaml_ng::Mapping>>(&text)
            .unwrap_or_else(|e| panic!("sops -d {} is not a YAML map ({e})", file.display()))
            .unwrap_or_default()
    }

    fn encrypt(&self, ws: &Workspace, key: &AgeKey, at: Coord, value: &str, keep: bool) {
        let mut data = if keep {
            self.plaintext(ws, at)
        } else {
            serde_yaml_ng::Mapping::new()
        };
        data.insert(at.name.into(), value.into());
        let text = serde_yaml_ng::to_string(&data).expect("serialise YAML");
        ws.sops_file(key, Self::rel_file(at), &text);
    }
}

fn age_identity(ws: &Workspace, key: &AgeKey, label: &str) -> Credential {
    let text = fs::read_to_string(&key.identity_file).expect("read the age key");
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("an age identity line")
        .to_owned();
    Credential {
        label: label.to_owned(),
        secret,
        home: Some(relative_to_root(ws, &key.identity_file)),
    }
}

/// How artifacts name a file: relative to the workspace root.
fn relative_to_root(ws: &Workspace, path: &Path) -> String {
    path.strip_prefix(ws.root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

impl Fixture for SopsFixture {
    fn atmos_yaml(&self) -> String {
        "secrets:\n  providers:\n    canary-sops:\n      kind: sops/age\n      spec:\n        \
         path: secrets\n        age_key_file: keys/provider.agekey\n"
            .to_owned()
    }

    fn declaration(&self) -> String {
        "sops: canary-sops".to_owned()
    }

    fn plant(&self, ws: &Workspace, at: Coord, value: &str) {
        self.encrypt(ws, &self.key, at, value, true);
    }

    fn plant_unreadable(&self, ws: &Workspace, at: Coord, value: &str) {
        self.encrypt(ws, &self.foreign, at, value, false);
    }

    fn plant_corrupt(&self, ws: &Workspace, at: Coord, value: &str) {
        self.plant(ws, at, value);
        // Every value still decrypts; only the MAC over them is wrong, so a reader that does not
        // check it would hand the value out.
        let rel = Self::rel_file(at);
        let text = ws.read(&rel);
        let (head, tail) = text
            .split_once("mac: ENC[AES256_GCM,data:")
            .unwrap_or_else(|| panic!("no sops.mac in {rel}:\n{text}"));
        let flipped = match tail.as_bytes()[0] {
            b'A' => 'B',
            _ => 'A',
        };
        ws.write(
            &rel,
            format!("{head}mac: ENC[AES256_GCM,data:{flipped}{}", &tail[1..]),
        );
    }

    fn break_writes(&self, ws: &Workspace, at: Coord) {
        let file = ws.path(Self::rel_file(at));
        if running_as_root(ws) {
            // Root ignores permission bits: a directory where the file should be fails the same
            // read-modify-write for everyone.
            if file.is_file() {
                fs::remove_file(&file).expect("remove the SOPS file");
            }
            fs::create_dir_all(file.join("in-the-way")).expect("create the blocking directory");
        } else {
            let dir = file.parent().expect("the file has a parent");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o555))
                .expect("make the secrets directory read-only");
            *self.read_only.borrow_mut() = Some(dir.to_path_buf());
        }
    }

    fn credentials(&self, ws: &Workspace) -> Vec<Credential> {
        vec![
            age_identity(ws, &self.key, "the provider's age identity"),
            age_identity(ws, &self.foreign, "a foreign age identity"),
        ]
    }

    fn break_credentials(&self, _ws: &Workspace, bogus: &str) {
        // Shaped like an identity, so a parser that quotes what it rejects would show it.
        fs::write(
            &self.key.identity_file,
            format!("# created by the test\nAGE-SECRET-KEY-1{bogus}\n"),
        )
        .expect("overwrite the age key");
    }

    fn stored(&self, ws: &Workspace, at: Coord) -> Option<String> {
        self.plaintext(ws, at).get(at.name).map(|v| match v {
            serde_yaml_ng::Value::String(s) => s.clone(),
            other => panic!("{} holds a non-string {other:?}", at.name),
        })
    }
}

/// Whether the tests run as root (who owns what they create).
fn running_as_root(ws: &Workspace) -> bool {
    fs::metadata(ws.root()).expect("stat the workspace").uid() == 0
}

/// HashiCorp Vault KV v2, served by a real OpenBao dev server (one per fixture), reached with
/// OpenBao's own HTTP API as its root.
struct Vault;

/// The policy the provider's token holds; `break_writes` and `plant_unreadable` narrow it.
const VAULT_POLICY: &str = "atmos-canary";

struct VaultFixture {
    bao: support::peers::OpenBao,
    /// The provider's token (`VAULT_TOKEN`), limited to [`VAULT_POLICY`].
    token: String,
    /// Rules for single secrets, appended to the policy: an exact path beats the policy's glob.
    overrides: std::cell::RefCell<Vec<String>>,
}

impl Backend for Vault {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn setup(&self, _ws: &Workspace) -> Box<dyn Fixture> {
        let bao = support::peers::OpenBao::start();
        let fixture = VaultFixture {
            bao,
            token: String::new(),
            overrides: Default::default(),
        };
        fixture.write_policy();
        let created = vault_ok(
            fixture.bao.request(
                "POST",
                "/v1/auth/token/create",
                Some(&serde_json::json!({ "policies": [VAULT_POLICY], "ttl": "2h" })),
            ),
            "create the provider's token",
        );
        let token = created.json()["auth"]["client_token"]
            .as_str()
            .expect("a client token")
            .to_owned();
        Box::new(VaultFixture { token, ..fixture })
    }
}

/// Panics unless the OpenBao call succeeded.
#[track_caller]
fn vault_ok(resp: support::peers::HttpResponse, what: &str) -> support::peers::HttpResponse {
    assert!(
        (200..300).contains(&resp.status),
        "{what}: OpenBao answered {resp}"
    );
    resp
}

impl VaultFixture {
    /// The KV path of `at` under the mount, as the store computes it (prefix, stack, component).
    fn kv_path(at: Coord) -> String {
        match at.component {
            Some(c) => format!("atmos/{}/{c}/{}", at.stack, at.name),
            None => format!("atmos/{}/{}", at.stack, at.name),
        }
    }

    /// (Re)writes the provider's policy: read, write and delete everything under the prefix,
    /// then the per-secret overrides.
    fn write_policy(&self) {
        let mut policy = String::from(
            "path \"secret/data/atmos/*\" { capabilities = [\"create\", \"read\", \"update\", \
             \"delete\", \"list\"] }\npath \"secret/metadata/atmos/*\" { capabilities = \
             [\"read\", \"list\", \"delete\"] }\n",
        );
        for rule in self.overrides.borrow().iter() {
            policy.push_str(rule);
            policy.push('\n');
        }
        vault_ok(
            self.bao.request(
                "PUT",
                &format!("/v1/sys/policies/acl/{VAULT_POLICY}"),
                Some(&serde_json::json!({ "policy": policy })),
            ),
            "write the provider's policy",
        );
    }

    /// Gives the provider's token exactly `capabilities` on the secret at `at`.
    fn restrict(&self, at: Coord, capabilities: &str) {
        self.overrides.borrow_mut().push(format!(
            "path \"secret/data/{}\" {{ capabilities = [{capabilities}] }}",
            Self::kv_path(at)
        ));
        self.write_policy();
    }

    fn put(&self, at: Coord, data: serde_json::Value) {
        vault_ok(
            self.bao.request(
                "POST",
                &format!("/v1/secret/data/{}", Self::kv_path(at)),
                Some(&serde_json::json!({ "data": data })),
            ),
            "plant a secret",
        );
    }
}

impl Fixture for VaultFixture {
    fn atmos_yaml(&self) -> String {
        format!(
            "stores:\n  canary-vault:\n    kind: hashicorp/vault\n    secret: true\n    options:\n      \
             url: \"{}\"\n      mount: secret\n      prefix: atmos\n",
            self.bao.endpoint()
        )
    }

    fn declaration(&self) -> String {
        "store: canary-vault".to_owned()
    }

    fn plant(&self, _ws: &Workspace, at: Coord, value: &str) {
        // As `atmos secret set` writes it.
        self.put(at, serde_json::json!({ "value": value }));
    }

    fn plant_unreadable(&self, ws: &Workspace, at: Coord, value: &str) {
        self.plant(ws, at, value);
        // Present, but the provider's token is denied it (OpenBao answers 403).
        self.restrict(at, "\"deny\"");
    }

    fn plant_corrupt(&self, _ws: &Workspace, at: Coord, value: &str) {
        // A KV secret, readable, but without the field `value`: the store must refuse it and
        // must not hand out (or quote) what is there instead.
        self.put(at, serde_json::json!({ "password": value }));
    }

    fn break_writes(&self, _ws: &Workspace, at: Coord) {
        // Reads still work; create, update and delete answer 403.
        self.restrict(at, "\"read\", \"list\"");
    }

    fn stored(&self, _ws: &Workspace, at: Coord) -> Option<String> {
        let resp = self.bao.request(
            "GET",
            &format!("/v1/secret/data/{}", Self::kv_path(at)),
            None,
        );
        // 404: never written, or its latest version deleted (the store's default soft delete).
        if resp.status == 404 {
            return None;
        }
        let body = vault_ok(resp, "read a secret back").json();
        let data = &body["data"]["data"];
        if data.is_null() {
            return None;
        }
        match &data["value"] {
            serde_json::Value::String(s) => Some(s.clone()),
            other => panic!("{} holds {other} in its field `value`", at.name),
        }
    }

    fn credentials(&self, _ws: &Workspace) -> Vec<Credential> {
        // The dev server's root token (`root`) is too short to search for; the provider never
        // sees it.
        vec![Credential {
            label: "the provider's Vault token (VAULT_TOKEN)".to_owned(),
            secret: self.token.clone(),
            home: None,
        }]
    }

    fn break_credentials(&self, _ws: &Workspace, _bogus: &str) {
        // A token that was good and is no longer: revoked, so OpenBao answers 403 to it. The
        // token stays in VAULT_TOKEN and in the credentials searched for.
        vault_ok(
            self.bao.request(
                "POST",
                "/v1/auth/token/revoke",
                Some(&serde_json::json!({ "token": self.token })),
            ),
            "revoke the provider's token",
        );
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("VAULT_TOKEN".to_owned(), self.token.clone())]
    }
}

/// AWS SSM Parameter Store or Secrets Manager, served by a real moto server (one per fixture),
/// reached with the services' own JSON APIs.
///
/// moto does not check credentials, IAM policies or KMS keys, so three error scenarios cannot be
/// staged (see [`Backend::cannot_stage`]); writes and deletes are broken by stopping the server.
#[derive(Clone, Copy)]
enum Aws {
    Ssm,
    Asm,
}

struct AwsFixture {
    service: Aws,
    /// `None` once `break_writes` stopped the server.
    moto: std::cell::RefCell<Option<support::peers::Moto>>,
    endpoint: String,
    /// The provider's secret access key (moto accepts any; it only signs requests).
    secret_key: String,
}

impl Backend for Aws {
    fn name(&self) -> &'static str {
        match self {
            Aws::Ssm => "aws-ssm",
            Aws::Asm => "aws-asm",
        }
    }

    fn setup(&self, _ws: &Workspace) -> Box<dyn Fixture> {
        let moto = support::peers::Moto::start();
        let endpoint = moto.endpoint();
        let key: [u8; 30] = rand::random();
        Box::new(AwsFixture {
            service: *self,
            moto: std::cell::RefCell::new(Some(moto)),
            endpoint,
            // 40 characters, like a real secret access key.
            secret_key: base64::engine::general_purpose::STANDARD.encode(key),
        })
    }

    fn cannot_stage(&self) -> &'static [(Staging, &'static str)] {
        &[
            (
                Staging::Unreadable,
                "moto enforces no IAM policy and no KMS key: every stored value is readable",
            ),
            (
                Staging::Corrupt,
                "the AWS stores take any stored text as the value: there is no corrupt form",
            ),
            (
                Staging::Credentials,
                "moto accepts any credentials, so none can be rejected",
            ),
        ]
    }
}

impl AwsFixture {
    /// The parameter or secret name of `at`, as the store computes it.
    fn aws_name(&self, at: Coord) -> String {
        let root = match self.service {
            Aws::Ssm => "/atmos",
            Aws::Asm => "atmos",
        };
        match at.component {
            Some(c) => format!("{root}/{}/{c}/{}", at.stack, at.name),
            None => format!("{root}/{}/{}", at.stack, at.name),
        }
    }

    /// One call to moto; panics when the server was stopped.
    fn call(&self, target: &str, body: serde_json::Value) -> support::peers::HttpResponse {
        let moto = self.moto.borrow();
        let moto = moto.as_ref().expect("moto is running");
        let service = match self.service {
            Aws::Ssm => "ssm",
            Aws::Asm => "secretsmanager",
        };
        moto.aws_json(service, target, &body)
    }
}

/// Panics unless the moto call succeeded.
#[track_caller]
fn aws_ok(resp: support::peers::HttpResponse, what: &str) -> support::peers::HttpResponse {
    assert_eq!(resp.status, 200, "{what}: moto answered {resp}");
    resp
}

impl Fixture for AwsFixture {
    fn atmos_yaml(&self) -> String {
        let (kind, prefix) = match self.service {
            Aws::Ssm => ("aws/ssm", "/atmos"),
            Aws::Asm => ("aws/asm", "atmos"),
        };
        format!(
            "stores:\n  canary-aws:\n    kind: {kind}\n    secret: true\n    options:\n      \
             region: us-east-1\n      endpoint: \"{}\"\n      prefix: {prefix}\n",
            self.endpoint
        )
    }

    fn declaration(&self) -> String {
        "store: canary-aws".to_owned()
    }

    fn plant(&self, _ws: &Workspace, at: Coord, value: &str) {
        let name = self.aws_name(at);
        match self.service {
            Aws::Ssm => {
                aws_ok(
                    self.call(
                        "AmazonSSM.PutParameter",
                        serde_json::json!({
                            "Name": name, "Value": value, "Type": "SecureString", "Overwrite": true
                        }),
                    ),
                    "plant a parameter",
                );
            }
            Aws::Asm => {
                // As Atmos writes it: a JSON string.
                let text = serde_json::Value::from(value).to_string();
                aws_ok(
                    self.call(
                        "secretsmanager.CreateSecret",
                        serde_json::json!({ "Name": name, "SecretString": text }),
                    ),
                    "plant a secret",
                );
            }
        }
    }

    fn plant_unreadable(&self, _ws: &Workspace, _at: Coord, _value: &str) {
        unreachable!("see Aws::cannot_stage");
    }

    fn plant_corrupt(&self, _ws: &Workspace, _at: Coord, _value: &str) {
        unreachable!("see Aws::cannot_stage");
    }

    fn break_writes(&self, _ws: &Workspace, _at: Coord) {
        // Stop the server: every later call is refused (reads too, which the scenarios allow).
        drop(self.moto.borrow_mut().take());
    }

    fn stored(&self, _ws: &Workspace, at: Coord) -> Option<String> {
        let name = self.aws_name(at);
        let resp = match self.service {
            Aws::Ssm => self.call(
                "AmazonSSM.GetParameter",
                serde_json::json!({ "Name": name, "WithDecryption": true }),
            ),
            Aws::Asm => self.call(
                "secretsmanager.GetSecretValue",
                serde_json::json!({ "SecretId": name }),
            ),
        };
        // Missing, or (Secrets Manager) scheduled for deletion.
        let missing = [
            "ParameterNotFound",
            "ResourceNotFoundException",
            "marked deleted",
        ];
        if resp.status == 400 && missing.iter().any(|m| resp.text().contains(m)) {
            return None;
        }
        let body = aws_ok(resp, "read a value back").json();
        match self.service {
            Aws::Ssm => Some(
                body["Parameter"]["Value"]
                    .as_str()
                    .expect("a parameter value")
                    .to_owned(),
            ),
            Aws::Asm => {
                let text = body["SecretString"].as_str().expect("a secret string");
                Some(
                    serde_json::from_str::<String>(text)
                        .unwrap_or_else(|e| panic!("{name} is not a JSON string ({e}): {text}")),
                )
            }
        }
    }

    fn credentials(&self, _ws: &Workspace) -> Vec<Credential> {
        vec![Credential {
            label: "the provider's AWS secret access key (AWS_SECRET_ACCESS_KEY)".to_owned(),
            secret: self.secret_key.clone(),
            home: None,
        }]
    }

    fn break_credentials(&self, _ws: &Workspace, _bogus: &str) {
        unreachable!("see Aws::cannot_stage");
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "AKIACANARYTESTKEY001"),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            // The SDK's switch for logging signed request bodies (PutParameter, PutSecretValue
            // carry the value) at trace level: an operator debugging a signature problem may
            // well have it on.
            ("LOG_SIGNABLE_BODY", "true"),
            // Nothing but the environment: no instance metadata, no files.
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture layout shared by every backend

/// Declared under the stack (stack scope).
const SHARED: Coord = stack_scoped("SHARED_SECRET");
/// Read by `data "atmos_secret"` and `data "atmos_secrets"`.
const DATA: Coord = instance("DATA_SECRET");
/// Read by `ephemeral "atmos_secret"`.
const EPHEMERAL: Coord = instance("EPHEMERAL_SECRET");
/// Where the ephemeral path writes what it read (through `value_wo`).
const COPY: Coord = instance("COPY_SECRET");
/// Written through `value`.
const VALUE: Coord = instance("VALUE_SECRET");
/// Written through `value_wo`.
const VALUE_WO: Coord = instance("WO_SECRET");
/// Present in the backend but declared nowhere.
const UNDECLARED: Coord = instance("UNDECLARED_SECRET");

/// Writes `atmos.yaml` and the `prod` stack declaring every secret above (except [`UNDECLARED`])
/// for the fixture's backend.
fn write_atmos_config(ws: &Workspace, fixture: &dyn Fixture) {
    ws.write(
        "atmos.yaml",
        format!(
            "base_path: \".\"\nstacks:\n  base_path: stacks\n  included_paths:\n    - \"**/*\"\n  \
             name_pattern: \"{{stage}}\"\n{}",
            fixture.atmos_yaml()
        ),
    );
    let decl = fixture.declaration();
    let instance_vars: String = [DATA, EPHEMERAL, COPY, VALUE, VALUE_WO]
        .iter()
        .map(|c| format!("          {}: {{ {decl} }}\n", c.name))
        .collect();
    ws.write(
        "stacks/prod.yaml",
        format!(
            "vars:\n  stage: prod\nsecrets:\n  vars:\n    {}: {{ {decl} }}\ncomponents:\n  \
             terraform:\n    api:\n      vars:\n        replicas: 1\n      secrets:\n        \
             vars:\n{instance_vars}",
            SHARED.name
        ),
    );
}

fn hcl_coord(at: Coord) -> String {
    let mut s = format!("  name  = \"{}\"\n  stack = \"{}\"\n", at.name, at.stack);
    if let Some(c) = at.component {
        s.push_str(&format!("  component = \"{c}\"\n"));
    }
    s
}

fn main_tf(body: &str) -> String {
    format!("{REQUIRED_PROVIDERS}\nprovider \"atmos\" {{}}\n\n{body}")
}

/// A sensitive variable the value comes in through (`TF_VAR_canary`), so that the canary is never
/// in a `.tf` file (the saved plan embeds the configuration).
fn canary_variable(ephemeral: bool) -> String {
    format!(
        "variable \"canary\" {{\n  type      = string\n  sensitive = true\n{}}}\n\n",
        if ephemeral {
            "  ephemeral = true\n"
        } else {
            ""
        }
    )
}

fn resource_value(at: Coord) -> String {
    format!(
        "{}resource \"atmos_secret_value\" \"canary\" {{\n{}  value = var.canary\n}}\n",
        canary_variable(false),
        hcl_coord(at)
    )
}

fn resource_value_wo(at: Coord) -> String {
    resource_value_wo_version(at, 1)
}

fn resource_value_wo_version(at: Coord, version: u32) -> String {
    format!(
        "{}resource \"atmos_secret_value\" \"canary\" {{\n{}  value_wo         = var.canary\n  \
         value_wo_version = {version}\n}}\n",
        canary_variable(true),
        hcl_coord(at)
    )
}

fn data_source(at: Coord) -> String {
    format!(
        "data \"atmos_secret\" \"canary\" {{\n{}}}\n\noutput \"value\" {{\n  value     = \
         data.atmos_secret.canary.value\n  sensitive = true\n}}\n\noutput \"scope\" {{\n  value = \
         data.atmos_secret.canary.scope\n}}\n",
        hcl_coord(at)
    )
}

fn ephemeral_copy(from: Coord, to: Coord) -> String {
    format!(
        "ephemeral \"atmos_secret\" \"canary\" {{\n{}}}\n\nresource \"atmos_secret_value\" \"copy\" \
         {{\n{}  value_wo         = ephemeral.atmos_secret.canary.value\n  value_wo_version = 1\n}}\n",
        hcl_coord(from),
        hcl_coord(to)
    )
}

// ---------------------------------------------------------------------------------------------
// Canaries and where they may be

/// A value no test could produce by accident.
fn new_canary(path: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    format!("canary-{path}-{}", hex::encode(bytes))
}

/// The byte strings that betray the canary: itself, hex, its bytes as decimal numbers (a Rust
/// `{:?}` or JSON array of bytes), and base64 at each of the three alignments it could have inside
/// a larger encoded blob (only the characters fixed by the canary's own bytes, so padding and
/// neighbours do not matter).
fn encodings(canary: &str) -> Vec<(String, Vec<u8>)> {
    let raw = canary.as_bytes();
    let decimal = |sep: &str| {
        raw.iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(sep)
            .into_bytes()
    };
    let mut forms = vec![
        ("plain text".to_owned(), raw.to_vec()),
        ("hex".to_owned(), hex::encode(raw).into_bytes()),
        ("HEX".to_owned(), hex::encode_upper(raw).into_bytes()),
        // `{:?}` of a byte slice, as crates' trace logs print bodies.
        ("decimal bytes (Debug)".to_owned(), decimal(", ")),
        ("decimal bytes (JSON array)".to_owned(), decimal(",")),
    ];
    for skip in 0..3 {
        let body = &raw[skip..];
        let body = &body[..body.len() / 3 * 3];
        for (label, engine) in [
            ("base64", &base64::engine::general_purpose::STANDARD_NO_PAD),
            (
                "base64url",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ),
        ] {
            forms.push((
                format!("{label} (alignment {skip})"),
                engine.encode(body).into_bytes(),
            ));
        }
    }
    forms
}

/// What an artifact is, which decides whether a canary may be in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Stdout,
    Stderr,
    TraceLog,
    /// `terraform.tfstate` and its backups.
    State,
    /// The saved plan (raw and each zip member).
    Plan,
    /// `tofu show -json` of the plan or the state.
    ShowJson,
    /// Anything else on disk: backend files, `.terraform/`, the configuration.
    OtherFile,
}

impl Kind {
    /// Whether OpenTofu keeps values in it by design (for paths whose values are in state).
    fn holds_state(self) -> bool {
        matches!(self, Kind::State | Kind::Plan | Kind::ShowJson)
    }
}

struct Artifact {
    step: String,
    label: String,
    kind: Kind,
    bytes: Vec<u8>,
}

/// One finding: where, in which encoding, and a little context.
struct Finding {
    step: String,
    label: String,
    kind: Kind,
    encoding: String,
    context: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  after `{}`: {} ({:?}) holds the canary as {}: …{}…",
            self.step, self.label, self.kind, self.encoding, self.context
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Everything captured while driving one scenario.
struct Capture<'a> {
    ws: &'a Workspace,
    backend: &'static str,
    scenario: String,
    /// The planted values (the first one, and any rotated in later).
    canaries: Vec<String>,
    /// Whether the scenario's value may be in state-bearing artifacts.
    kept_in_state: bool,
    /// Backend credentials, allowed nowhere but in their own files (labels as in artifacts).
    credentials: Vec<Credential>,
    env: Vec<(String, String)>,
    logs: PathBuf,
    steps: usize,
    artifacts: Vec<Artifact>,
}

impl<'a> Capture<'a> {
    fn new(
        ws: &'a Workspace,
        backend: &'static str,
        scenario: &str,
        canary: &str,
        kept_in_state: bool,
    ) -> Self {
        let logs = ws.root().join("logs");
        fs::create_dir_all(&logs).expect("create the log directory");
        Self {
            ws,
            backend,
            scenario: scenario.to_owned(),
            canaries: vec![canary.to_owned()],
            kept_in_state,
            credentials: Vec::new(),
            env: Vec::new(),
            logs,
            steps: 0,
            artifacts: Vec::new(),
        }
    }

    /// Searches for the backend's credentials (as they are now) and hands every command the
    /// backend's environment.
    fn with_fixture(mut self, fixture: &dyn Fixture) -> Self {
        self.credentials.extend(fixture.credentials(self.ws));
        self.env.extend(fixture.env());
        self
    }

    /// Passes the canary to every command as `TF_VAR_canary`.
    fn with_canary_variable(mut self) -> Self {
        let canary = self.canaries[0].clone();
        self.set_variable(&canary);
        self
    }

    /// Passes `value` as `TF_VAR_canary` from now on.
    fn set_variable(&mut self, value: &str) {
        self.env.retain(|(k, _)| k != "TF_VAR_canary");
        self.env.push(("TF_VAR_canary".into(), value.to_owned()));
    }

    /// Searches for another planted value, under the same rules.
    fn add_canary(&mut self, canary: &str) {
        self.canaries.push(canary.to_owned());
    }

    fn what(&self) -> String {
        format!("[{} / {}]", self.backend, self.scenario)
    }

    /// Runs one tofu command with the provider's trace log and captures everything it left.
    fn step(&mut self, name: &str, cmd: Tofu) -> RunOutput {
        self.steps += 1;
        let log = self.logs.join(format!("{:02}.log", self.steps));
        // OpenTofu's own trace too: what the provider hands back must not surface there either.
        let mut cmd = cmd.provider_trace(&log).env("TF_LOG_CORE", "trace");
        for (k, v) in &self.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run();
        let step = name.to_owned();
        // `show -json` prints state and plans, sensitive values included, by design.
        let stdout_kind = if name.starts_with("show -json") {
            Kind::ShowJson
        } else {
            Kind::Stdout
        };
        self.push(
            &step,
            "stdout",
            stdout_kind,
            out.stdout.clone().into_bytes(),
        );
        self.push(
            &step,
            "stderr",
            Kind::Stderr,
            out.stderr.clone().into_bytes(),
        );
        let trace = fs::read(&log).unwrap_or_default();
        self.push(&step, "provider trace log", Kind::TraceLog, trace);
        self.snapshot(&step);
        out
    }

    /// Runs a step that must succeed.
    #[track_caller]
    fn ok(&mut self, name: &str, cmd: Tofu) -> RunOutput {
        let out = self.step(name, cmd);
        assert!(out.success(), "{} `{name}` failed:\n{out}", self.what());
        out
    }

    /// Runs a step that must fail.
    #[track_caller]
    fn fails(&mut self, name: &str, cmd: Tofu) -> RunOutput {
        let out = self.step(name, cmd);
        assert!(
            !out.success(),
            "{} `{name}` should have failed:\n{out}",
            self.what()
        );
        out
    }

    fn push(&mut self, step: &str, label: &str, kind: Kind, bytes: Vec<u8>) {
        self.artifacts.push(Artifact {
            step: step.to_owned(),
            label: label.to_owned(),
            kind,
            bytes,
        });
    }

    /// Every file under the workspace root except the provider binaries (our logs are captured
    /// per step already).
    fn snapshot(&mut self, step: &str) {
        let root = self.ws.root().to_path_buf();
        let mut files = Vec::new();
        collect_files(&root, &mut files);
        for file in files {
            let rel = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
            let rel_str = rel.to_string_lossy().into_owned();
            if rel.starts_with("logs")
                || rel.starts_with("mirror")
                || rel.starts_with("dev")
                || rel_str.contains(".terraform/providers/")
            {
                continue;
            }
            let Ok(bytes) = fs::read(&file) else { continue };
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let kind = match name.as_deref() {
                Some(n) if n.contains(".tfstate") => Kind::State,
                Some("tfplan") => Kind::Plan,
                _ => Kind::OtherFile,
            };
            if kind == Kind::Plan {
                for (member, content) in zip_members(&file) {
                    self.push(
                        step,
                        &format!("{rel_str} member {member}"),
                        Kind::Plan,
                        content,
                    );
                }
            }
            self.push(step, &rel_str, kind, bytes);
        }
    }

    /// Where `secret` is, in any encoding (the first encoding found per artifact).
    fn findings(&self, secret: &str) -> Vec<Finding> {
        let forms = encodings(secret);
        let mut found = Vec::new();
        for a in &self.artifacts {
            for (encoding, needle) in &forms {
                if let Some(at) = find(&a.bytes, needle) {
                    let from = at.saturating_sub(60);
                    let to = (at + needle.len() + 60).min(a.bytes.len());
                    found.push(Finding {
                        step: a.step.clone(),
                        label: a.label.clone(),
                        kind: a.kind,
                        encoding: encoding.clone(),
                        context: String::from_utf8_lossy(&a.bytes[from..to]).replace('\n', "⏎"),
                    });
                    break;
                }
            }
        }
        found
    }

    /// Panics, listing every place, if the canary (or a credential) is anywhere it must not be.
    #[track_caller]
    fn assert_no_leak(&self) {
        let mut leaks: Vec<String> = self
            .canaries
            .iter()
            .flat_map(|c| self.findings(c))
            .filter(|f| !(self.kept_in_state && f.kind.holds_state()))
            .map(|f| format!("{f}"))
            .collect();
        for c in &self.credentials {
            leaks.extend(
                self.findings(&c.secret)
                    .into_iter()
                    .filter(|f| c.home.as_deref() != Some(f.label.as_str()))
                    .map(|f| format!("{f} [credential: {}]", c.label)),
            );
        }
        let rule = if self.kept_in_state {
            "allowed only in state, the saved plan and `show -json`"
        } else {
            "allowed nowhere"
        };
        assert!(
            leaks.is_empty(),
            "{} LEAK: the canary ({rule}) or a credential (allowed only in its own file) was \
             found in {} place(s):\n{}",
            self.what(),
            leaks.len(),
            leaks.join("\n")
        );
    }

    /// Panics unless the provider's own log lines reached the captured trace logs: a search of
    /// empty logs would prove nothing.
    #[track_caller]
    fn assert_traced(&self) {
        assert!(
            self.artifacts
                .iter()
                .any(|a| a.kind == Kind::TraceLog
                    && find(&a.bytes, b"@module=provider.atmos").is_some()),
            "{} no provider log line in any trace log; is TF_LOG_PROVIDER honoured?",
            self.what()
        );
    }

    /// Panics unless the latest canary is in the state file: proves the value really flowed and
    /// the search can see it.
    #[track_caller]
    fn assert_in_state(&self) {
        let canary = self.canaries.last().expect("at least one canary");
        let state = self.ws.path("terraform.tfstate");
        let bytes = fs::read(&state).unwrap_or_default();
        assert!(
            find(&bytes, canary.as_bytes()).is_some(),
            "{} the canary should be in {} (sensitive values are kept in state by design)",
            self.what(),
            state.display()
        );
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// The members of the zip archive `file` (a saved plan), uncompressed with `unzip`.
fn zip_members(file: &Path) -> Vec<(String, Vec<u8>)> {
    let list = Command::new("unzip")
        .arg("-Z1")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `unzip` to open the saved plan: {e}"));
    assert!(
        list.status.success(),
        "unzip -Z1 {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&list.stderr)
    );
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    let members: Vec<_> = names
        .lines()
        .filter(|n| !n.is_empty() && !n.ends_with('/'))
        .map(|member| {
            let out = Command::new("unzip")
                .arg("-p")
                .arg(file)
                .arg(member)
                .output()
                .unwrap_or_else(|e| panic!("cannot run `unzip -p`: {e}"));
            assert!(
                out.status.success(),
                "unzip -p {} {member} failed",
                file.display()
            );
            (member.to_owned(), out.stdout)
        })
        .collect();
    assert!(
        !members.is_empty(),
        "the saved plan {} has no members",
        file.display()
    );
    members
}

// ---------------------------------------------------------------------------------------------
// The life cycle of the happy paths

/// How a value travels.
#[derive(Clone, Copy, Debug)]
enum Flow {
    Data,
    DataMap,
    Ephemeral,
    Value,
    ValueWo,
}

impl Flow {
    fn label(self) -> &'static str {
        match self {
            Flow::Data => "data",
            Flow::DataMap => "data-map",
            Flow::Ephemeral => "ephemeral",
            Flow::Value => "value",
            Flow::ValueWo => "value_wo",
        }
    }

    /// Whether OpenTofu keeps this path's value in state by design.
    fn kept_in_state(self) -> bool {
        matches!(self, Flow::Data | Flow::DataMap | Flow::Value)
    }
}

/// Plants a canary for `path`, drives the whole life cycle, and checks every artifact.
fn life_cycle(backend: &dyn Backend, path: Flow) {
    let ws = Workspace::new();
    let fixture = backend.setup(&ws);
    write_atmos_config(&ws, &*fixture);
    let canary = new_canary(path.label());
    // Another value in the backend, so the flow runs next to data it must leave alone.
    fixture.plant(&ws, SHARED, &new_canary("neighbour"));

    let (config, written) = match path {
        Flow::Data => {
            fixture.plant(&ws, DATA, &canary);
            (data_source(DATA), None)
        }
        Flow::DataMap => {
            fixture.plant(&ws, DATA, &canary);
            let body = format!(
                "data \"atmos_secrets\" \"all\" {{\n  stack     = \"prod\"\n  component = \
                 \"api\"\n  names     = [\"{}\", \"{}\"]\n}}\n\noutput \"status\" {{\n  value = \
                 data.atmos_secrets.all.status\n}}\n",
                DATA.name, SHARED.name
            );
            (body, None)
        }
        Flow::Ephemeral => {
            fixture.plant(&ws, EPHEMERAL, &canary);
            (ephemeral_copy(EPHEMERAL, COPY), Some(COPY))
        }
        Flow::Value => (resource_value(VALUE), Some(VALUE)),
        Flow::ValueWo => (resource_value_wo(VALUE_WO), Some(VALUE_WO)),
    };
    ws.write("main.tf", main_tf(&config));

    let mut cap = Capture::new(
        &ws,
        backend.name(),
        path.label(),
        &canary,
        path.kept_in_state(),
    )
    .with_fixture(&*fixture);
    if matches!(path, Flow::Value | Flow::ValueWo) {
        cap = cap.with_canary_variable();
    }
    let what = cap.what();

    cap.ok("init", ws.init());
    let plan = cap.ok("plan -out=tfplan", ws.plan_out("tfplan"));
    assert!(
        plan.stdout.contains("sensitive") || !matches!(path, Flow::Value),
        "{what} the plan should mask the value:\n{plan}"
    );
    cap.ok("show -json tfplan", ws.show_plan_json("tfplan"));
    cap.ok("apply tfplan", ws.apply_plan("tfplan"));
    cap.ok("show -json", ws.show_json());
    // The human-readable state masks sensitive values.
    cap.ok("show", ws.show());

    if path.kept_in_state() {
        cap.assert_in_state();
    }
    if let Some(at) = written {
        assert_eq!(
            fixture.stored(&ws, at).as_deref(),
            Some(canary.as_str()),
            "{what} after apply the backend should hold the canary at {}",
            at.name
        );
    }
    if let Flow::DataMap = path {
        let status = cap.ok("output -json", ws.output_json()).stdout_json();
        assert_eq!(
            status["status"]["value"][DATA.name], "initialized",
            "{what} {status}"
        );
    }

    cap.ok("refresh", ws.refresh());
    let again = cap.step(
        "plan -detailed-exitcode",
        ws.plan().arg("-detailed-exitcode"),
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{what} a second plan should find no changes:\n{again}"
    );

    // Rotation: a new value through the update path, under the same rules.
    if let (Some(at), Flow::Value | Flow::ValueWo) = (written, path) {
        let rotated = new_canary(&format!("{}-rotated", path.label()));
        cap.add_canary(&rotated);
        cap.set_variable(&rotated);
        if let Flow::ValueWo = path {
            ws.write("main.tf", main_tf(&resource_value_wo_version(at, 2)));
        }
        let plan = cap.step(
            "plan -out=tfplan (rotation)",
            ws.plan_out("tfplan").arg("-detailed-exitcode"),
        );
        assert_eq!(
            plan.status.code(),
            Some(2),
            "{what} the rotation should plan a change:\n{plan}"
        );
        cap.ok("show -json tfplan (rotation)", ws.show_plan_json("tfplan"));
        cap.ok("apply tfplan (rotation)", ws.apply_plan("tfplan"));
        assert_eq!(
            fixture.stored(&ws, at).as_deref(),
            Some(rotated.as_str()),
            "{what} after the rotation the backend should hold the new canary at {}",
            at.name
        );
        if path.kept_in_state() {
            cap.assert_in_state();
        }
        let again = cap.step(
            "plan -detailed-exitcode (after rotation)",
            ws.plan().arg("-detailed-exitcode"),
        );
        assert_eq!(
            again.status.code(),
            Some(0),
            "{what} a plan after the rotation should find no changes:\n{again}"
        );
    }

    cap.ok("destroy", ws.destroy());

    if let Some(at) = written {
        assert_eq!(
            fixture.stored(&ws, at),
            None,
            "{what} destroy should remove {} from the backend",
            at.name
        );
    }
    // What the resource did not own stays.
    if let Flow::Data | Flow::DataMap = path {
        assert_eq!(fixture.stored(&ws, DATA).as_deref(), Some(canary.as_str()));
    }
    cap.assert_traced();
    cap.assert_no_leak();
}

#[test]
fn data_source_value_is_only_in_state() {
    for backend in backends() {
        life_cycle(&*backend, Flow::Data);
    }
}

#[test]
fn data_source_map_values_are_only_in_state() {
    for backend in backends() {
        life_cycle(&*backend, Flow::DataMap);
    }
}

#[test]
fn ephemeral_value_is_nowhere() {
    for backend in backends() {
        life_cycle(&*backend, Flow::Ephemeral);
    }
}

#[test]
fn resource_value_is_only_in_state() {
    for backend in backends() {
        life_cycle(&*backend, Flow::Value);
    }
}

#[test]
fn resource_write_only_value_is_nowhere() {
    for backend in backends() {
        life_cycle(&*backend, Flow::ValueWo);
    }
}

// ---------------------------------------------------------------------------------------------
// Error paths

/// Plans a configuration (what `prepare` returns, after planting) that must fail at plan with
/// `expect` in its error, and checks the canary stayed hidden. Only a `value` flow may leave it in
/// the (errored) saved plan, which holds the sensitive variable it came in by.
fn plan_fails(
    backend: &dyn Backend,
    scenario: &str,
    flow: Flow,
    prepare: impl FnOnce(&Workspace, &dyn Fixture, &str) -> String,
    expect: &str,
) {
    let ws = Workspace::new();
    let fixture = backend.setup(&ws);
    write_atmos_config(&ws, &*fixture);
    let canary = new_canary(scenario);
    let config = prepare(&ws, &*fixture, &canary);
    ws.write("main.tf", main_tf(&config));
    let kept = matches!(flow, Flow::Value);
    let mut cap =
        Capture::new(&ws, backend.name(), scenario, &canary, kept).with_fixture(&*fixture);
    if matches!(flow, Flow::Value | Flow::ValueWo) {
        cap = cap.with_canary_variable();
    }
    let what = cap.what();
    cap.ok("init", ws.init());
    let out = cap.fails("plan -out=tfplan", ws.plan_out("tfplan"));
    assert!(
        out.stderr.contains(expect),
        "{what} the error should say {expect:?}:\n{out}"
    );
    // OpenTofu saves an errored plan for inspection; it must be marked so, and it is searched too.
    if ws.path("tfplan").exists() {
        let plan = cap.ok("show -json tfplan", ws.show_plan_json("tfplan"));
        assert_eq!(
            plan.stdout_json()["errored"],
            true,
            "{what} the saved plan of a failed plan should be marked errored"
        );
        let apply = cap.fails("apply tfplan", ws.apply_plan("tfplan"));
        assert!(
            !apply.stderr.contains("Apply complete"),
            "{what} an errored plan was applied:\n{apply}"
        );
    }
    cap.assert_traced();
    cap.assert_no_leak();
}

#[test]
fn read_of_a_value_encrypted_for_another_key_fails_without_leaking() {
    for backend in backends() {
        if !can_stage(&*backend, Staging::Unreadable) {
            continue;
        }
        plan_fails(
            &*backend,
            "unreadable-data",
            Flow::Data,
            |ws, f, canary| {
                f.plant_unreadable(ws, DATA, canary);
                data_source(DATA)
            },
            "Reading the secret failed",
        );
        plan_fails(
            &*backend,
            "unreadable-ephemeral",
            Flow::Ephemeral,
            |ws, f, canary| {
                f.plant_unreadable(ws, EPHEMERAL, canary);
                ephemeral_copy(EPHEMERAL, COPY)
            },
            "Reading the secret failed",
        );
    }
}

#[test]
fn read_of_a_corrupt_value_fails_without_leaking() {
    for backend in backends() {
        if !can_stage(&*backend, Staging::Corrupt) {
            continue;
        }
        plan_fails(
            &*backend,
            "corrupt-data",
            Flow::Data,
            |ws, f, canary| {
                f.plant_corrupt(ws, DATA, canary);
                data_source(DATA)
            },
            "Reading the secret failed",
        );
        plan_fails(
            &*backend,
            "corrupt-ephemeral",
            Flow::Ephemeral,
            |ws, f, canary| {
                f.plant_corrupt(ws, EPHEMERAL, canary);
                ephemeral_copy(EPHEMERAL, COPY)
            },
            "Reading the secret failed",
        );
    }
}

#[test]
fn undeclared_names_fail_without_leaking() {
    for backend in backends() {
        plan_fails(
            &*backend,
            "undeclared-data",
            Flow::Data,
            |ws, f, canary| {
                // The backend holds a value under the name; the declaration is what is missing.
                f.plant(ws, UNDECLARED, canary);
                data_source(UNDECLARED)
            },
            "Undeclared secret",
        );
        plan_fails(
            &*backend,
            "undeclared-ephemeral",
            Flow::Ephemeral,
            |ws, f, canary| {
                f.plant(ws, UNDECLARED, canary);
                ephemeral_copy(UNDECLARED, COPY)
            },
            "Undeclared secret",
        );
        plan_fails(
            &*backend,
            "undeclared-value",
            Flow::Value,
            |_, _, _| resource_value(UNDECLARED),
            "Undeclared secret",
        );
        plan_fails(
            &*backend,
            "undeclared-value_wo",
            Flow::ValueWo,
            |_, _, _| resource_value_wo(UNDECLARED),
            "Undeclared secret",
        );
    }
}

#[test]
fn writing_a_stack_scoped_secret_with_a_component_fails_at_plan_without_leaking() {
    let with_component = Coord {
        component: Some("api"),
        ..SHARED
    };
    for backend in backends() {
        plan_fails(
            &*backend,
            "stack-scoped-value",
            Flow::Value,
            |_, _, _| resource_value(with_component),
            "Secret is stack-scoped here",
        );
        plan_fails(
            &*backend,
            "stack-scoped-value_wo",
            Flow::ValueWo,
            |_, _, _| resource_value_wo(with_component),
            "Secret is stack-scoped here",
        );
    }
}

/// What makes a backend call fail.
#[derive(Clone, Copy, Debug)]
enum Breakage {
    /// The storage refuses the write.
    Writes,
    /// The provider's credentials are malformed or revoked: the store cannot even be opened.
    Credentials,
}

impl Breakage {
    fn label(self) -> &'static str {
        match self {
            Breakage::Writes => "write",
            Breakage::Credentials => "credentials",
        }
    }
}

/// A write the backend refuses: the apply fails (or, when the store cannot even be opened, the
/// plan already does), and nothing is recorded.
fn write_fails(backend: &dyn Backend, path: Flow, breakage: Breakage) {
    let ws = Workspace::new();
    let fixture = backend.setup(&ws);
    write_atmos_config(&ws, &*fixture);
    let (at, config) = match path {
        Flow::Value => (VALUE, resource_value(VALUE)),
        Flow::ValueWo => (VALUE_WO, resource_value_wo(VALUE_WO)),
        other => panic!("{other:?} does not write"),
    };
    let scenario = format!("{}-fails-{}", breakage.label(), path.label());
    let canary = new_canary(&scenario);
    match breakage {
        Breakage::Writes => fixture.break_writes(&ws, at),
        Breakage::Credentials => fixture.break_credentials(&ws, &new_canary("bogus-key")),
    }
    ws.write("main.tf", main_tf(&config));
    let mut cap = Capture::new(
        &ws,
        backend.name(),
        &scenario,
        &canary,
        path.kept_in_state(),
    )
    .with_canary_variable()
    .with_fixture(&*fixture);
    let what = cap.what();
    cap.ok("init", ws.init());
    match breakage {
        Breakage::Writes => {
            cap.ok("plan -out=tfplan", ws.plan_out("tfplan"));
            cap.ok("show -json tfplan", ws.show_plan_json("tfplan"));
            let out = cap.fails("apply tfplan", ws.apply_plan("tfplan"));
            assert!(
                out.stderr.contains("Writing the secret failed"),
                "{what} the error should say the write failed:\n{out}"
            );
        }
        Breakage::Credentials => {
            // A store that cannot be opened fails the plan already.
            let out = cap.fails("plan -out=tfplan", ws.plan_out("tfplan"));
            assert!(
                out.stderr.contains("Store cannot be used"),
                "{what} the error should say the store cannot be used:\n{out}"
            );
            if ws.path("tfplan").exists() {
                let plan = cap.ok("show -json tfplan", ws.show_plan_json("tfplan"));
                assert_eq!(
                    plan.stdout_json()["errored"],
                    true,
                    "{what} the saved plan of a failed plan should be marked errored"
                );
            }
        }
    }
    let state = cap.ok("show -json", ws.show_json()).stdout_json();
    assert!(
        state["values"]["root_module"]["resources"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{what} a failed create must leave nothing in state: {state}"
    );
    // The failure is seen again on the next apply, and still leaks nothing.
    cap.fails("apply", ws.apply());
    cap.assert_traced();
    cap.assert_no_leak();
}

#[test]
fn failing_backend_writes_leak_nothing() {
    for backend in backends() {
        write_fails(&*backend, Flow::Value, Breakage::Writes);
        write_fails(&*backend, Flow::ValueWo, Breakage::Writes);
    }
}

/// A delete the backend refuses: `destroy` fails, the resource stays in state, nothing leaks.
fn delete_fails(backend: &dyn Backend, path: Flow) {
    let ws = Workspace::new();
    let fixture = backend.setup(&ws);
    write_atmos_config(&ws, &*fixture);
    let (at, config) = match path {
        Flow::Value => (VALUE, resource_value(VALUE)),
        Flow::ValueWo => (VALUE_WO, resource_value_wo(VALUE_WO)),
        other => panic!("{other:?} does not write"),
    };
    ws.write("main.tf", main_tf(&config));
    let scenario = format!("delete-fails-{}", path.label());
    let canary = new_canary(&scenario);
    let mut cap = Capture::new(
        &ws,
        backend.name(),
        &scenario,
        &canary,
        path.kept_in_state(),
    )
    .with_canary_variable()
    .with_fixture(&*fixture);
    let what = cap.what();
    cap.ok("init", ws.init());
    cap.ok("apply", ws.apply());
    assert_eq!(fixture.stored(&ws, at).as_deref(), Some(canary.as_str()));
    fixture.break_writes(&ws, at);
    // First with the refresh before the destroy (which fails already when the breakage also
    // stops reads), then, without refresh, the delete itself.
    let out = cap.fails("destroy", ws.destroy());
    assert!(
        out.stderr.contains("Reading the secret failed")
            || out.stderr.contains("Deleting the secret failed"),
        "{what} the error should say the refresh or the delete failed:\n{out}"
    );
    let out = cap.fails("destroy -refresh=false", ws.destroy().arg("-refresh=false"));
    assert!(
        out.stderr.contains("Deleting the secret failed"),
        "{what} the error should say the delete failed:\n{out}"
    );
    let state = cap.ok("show -json", ws.show_json()).stdout_json();
    assert_eq!(
        state["values"]["root_module"]["resources"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{what} a failed destroy must keep the resource in state: {state}"
    );
    cap.assert_traced();
    cap.assert_no_leak();
}

#[test]
fn failing_backend_deletes_leak_nothing() {
    for backend in backends() {
        delete_fails(&*backend, Flow::Value);
        delete_fails(&*backend, Flow::ValueWo);
    }
}

#[test]
fn malformed_backend_credentials_leak_nothing() {
    for backend in backends() {
        if !can_stage(&*backend, Staging::Credentials) {
            continue;
        }
        write_fails(&*backend, Flow::Value, Breakage::Credentials);
        write_fails(&*backend, Flow::ValueWo, Breakage::Credentials);
        plan_fails(
            &*backend,
            "credentials-fail-data",
            Flow::Data,
            |ws, f, canary| {
                f.plant(ws, DATA, canary);
                f.break_credentials(ws, &new_canary("bogus-key"));
                data_source(DATA)
            },
            "Cannot open store",
        );
        plan_fails(
            &*backend,
            "credentials-fail-ephemeral",
            Flow::Ephemeral,
            |ws, f, canary| {
                f.plant(ws, EPHEMERAL, canary);
                f.break_credentials(ws, &new_canary("bogus-key"));
                ephemeral_copy(EPHEMERAL, COPY)
            },
            "Cannot open store",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The search itself

#[test]
fn the_search_finds_every_encoding() {
    let canary = new_canary("self-test");
    for (label, needle) in encodings(&canary) {
        assert!(needle.len() >= 24, "{label} is too short to be distinctive");
    }
    let blob = |prefix: &[u8]| {
        let mut b = prefix.to_vec();
        b.extend_from_slice(canary.as_bytes());
        b.extend_from_slice(b"tail");
        b
    };
    for prefix in [&b""[..], b"x", b"xy", b"xyz"] {
        let raw = blob(prefix);
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&raw),
            base64::engine::general_purpose::URL_SAFE.encode(&raw),
            hex::encode(&raw),
            String::from_utf8(raw.clone()).expect("ascii"),
            format!("Bytes({raw:?})"),
            serde_json::to_string(&raw).expect("JSON"),
        ] {
            assert!(
                encodings(&canary)
                    .iter()
                    .any(|(_, n)| find(encoded.as_bytes(), n).is_some()),
                "not found in {encoded}"
            );
        }
    }
}
