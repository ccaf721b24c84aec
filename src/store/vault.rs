//! HashiCorp Vault (and OpenBao) KV v2 on the `vaultrs` crate: kind `hashicorp/vault`, legacy
//! `hashicorp-vault`.
//!
//! The native name the resolution layer computed is the secret's path under the KV v2 mount; the
//! value is the secret's field `value` (as Atmos writes it, see [`super::encoding`]).
//!
//! Options (`stores.<name>.options` in `atmos.yaml`):
//! - `url` or `address`: the server, falling back to `VAULT_ADDR`.
//! - `mount`: the KV v2 mount, default `secret`.
//! - `namespace`: sent as `X-Vault-Namespace`, falling back to `VAULT_NAMESPACE`.
//! - `auth`: `token` (default) or `approle`.
//!   - token: `token`, else `VAULT_TOKEN`, else `~/.vault-token`.
//!   - approle: `role_id` / `secret_id`, else `VAULT_ROLE_ID` / `VAULT_SECRET_ID`; `auth_mount`
//!     (default `approle`) names the auth method's mount.
//! - `destroy`: `false` (default) makes `delete` a soft delete of the latest version (Vault's
//!   `kv delete`: recoverable with `kv undelete`, and older versions stay); `true` deletes the
//!   secret's metadata and with it every version, beyond recovery (`kv metadata delete`).
//!
//! Versions: a read returns the latest version; its version id is the KV version number. A
//! latest version that is soft-deleted or destroyed reads as missing, as Vault's own `kv get` does.
//!
//! Authentication is checked once when the store is opened (AppRole login, or `lookup-self` for a
//! token), because Vault and OpenBao answer a bad token with the same 403 "permission denied" as a
//! token that lacks a policy: checking up front turns a bad token into one authentication error
//! naming the store instead of a denial on every secret. A 403 later on is checked the same way
//! once more, so a token revoked or expired mid-run is still reported as an authentication error.
//!
//! Every call has a timeout ([`CALL_TIMEOUT`]); connection errors, timeouts, 429 and 5xx answers
//! are retried with jittered exponential backoff, at most [`ATTEMPTS`] attempts within
//! [`CALL_BUDGET`], after which the store reports the backend unavailable.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use vaultrs::api::kv2::requests::{
    DeleteLatestSecretVersionRequest, DeleteSecretMetadataRequest, ReadSecretMetadataRequest,
    ReadSecretRequest,
};
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use super::encoding::{vault_decode, vault_encode};
use super::{Location, SecretStore, StoreError, StoreSettings, Versioned};
use crate::sensitive::SecretValue;

/// The store's kind in `atmos.yaml`.
pub const KIND: &str = "hashicorp/vault";
/// Time limit of one HTTP call (connect, send, and read the answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per operation, the first included.
pub const ATTEMPTS: usize = 4;
/// Time limit of one operation, all attempts and backoff included.
pub const CALL_BUDGET: Duration = Duration::from_secs(9);
/// Reads of one `read_many` in flight at once (KV v2 has no batch read).
const READ_CONCURRENCY: usize = 8;
/// What Vault says for a path under no mount.
const NO_ROUTE: &str = "no handler for route";
/// How much of a non-JSON error body goes into a message.
const BODY_EXCERPT: usize = 200;

/// A Vault KV v2 store.
pub struct VaultStore {
    name: String,
    address: String,
    mount: String,
    destroy: bool,
    client: VaultClient,
}

/// Why one call failed, before it is turned into a [`StoreError`] for a location.
#[derive(Debug)]
enum Failure {
    /// The server answered with an error status.
    Status { code: u16, errors: Vec<String> },
    /// No answer: connection refused or reset, timeout.
    Transport(String),
    /// The operation's time budget ran out.
    Budget,
    /// Anything else (an answer that does not parse, a request that cannot be built).
    Other(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code == 429 || (500..600).contains(code),
            Failure::Transport(_) => true,
            Failure::Budget | Failure::Other(_) => false,
        }
    }

    fn is_status(&self, wanted: u16) -> bool {
        matches!(self, Failure::Status { code, .. } if *code == wanted)
    }

    /// A 404 for a path under a mount: nothing stored there. A 404 "no handler for route" means
    /// the mount itself is missing, which must not pass for an empty secret.
    fn is_missing(&self) -> bool {
        match self {
            Failure::Status { code: 404, errors } => !errors.iter().any(|e| e.contains(NO_ROUTE)),
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Status { code, errors } if errors.is_empty() => format!("HTTP {code}"),
            Failure::Status { code, errors } => format!("HTTP {code}: {}", errors.join("; ")),
            Failure::Transport(m) | Failure::Other(m) => m.clone(),
            Failure::Budget => format!(
                "no answer within {} s (each call times out after {} s; up to {ATTEMPTS} attempts)",
                CALL_BUDGET.as_secs(),
                CALL_TIMEOUT.as_secs()
            ),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        use rustify::errors::ClientError as Rest;
        match e {
            ClientError::APIError { code, errors } => Failure::Status { code, errors },
            ClientError::RestClientError { source } => match source {
                Rest::ServerResponseError { code, content } => Failure::Status {
                    code,
                    errors: content.map(|c| excerpt(&c)).into_iter().collect(),
                },
                Rest::RequestError { source, .. } | Rest::ResponseError { source } => {
                    Failure::Transport(format!("{source:#}"))
                }
                other => Failure::Other(chain(&other)),
            },
            other => Failure::Other(chain(&other)),
        }
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The start of an error body that is not Vault's JSON (a proxy's HTML page, say).
fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_owned(),
    }
}

/// Runs `op` with retries for transient failures, within [`CALL_BUDGET`].
async fn with_retry<T, F, Fut>(op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(ATTEMPTS - 1);
    let retried = op.retry(backoff).when(Failure::retryable);
    match tokio::time::timeout(CALL_BUDGET, retried).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Budget),
    }
}

/// A header value vaultrs can send: it panics on anything else, so check first.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// `true`/`false` (a YAML boolean or its text).
fn flag(settings: &StoreSettings, key: &str) -> Result<bool, StoreError> {
    match settings.string(key)?.as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(StoreError::Config(format!(
            "store {:?}: option `{key}` must be true or false, not {other:?}",
            settings.name
        ))),
    }
}

/// An option, else an environment variable; empty counts as unset.
fn option_or_env(
    settings: &StoreSettings,
    keys: &[&str],
    env: &str,
) -> Result<Option<String>, StoreError> {
    for key in keys {
        if let Some(v) = settings.string(key)?.filter(|v| !v.trim().is_empty()) {
            return Ok(Some(v.trim().to_owned()));
        }
    }
    Ok(std::env::var(env)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

/// How the store authenticates.
enum Auth {
    Token {
        token: Zeroizing<String>,
        source: String,
    },
    AppRole {
        mount: String,
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
    },
}

fn auth_settings(settings: &StoreSettings) -> Result<Auth, StoreError> {
    let name = &settings.name;
    let method = settings
        .string("auth")?
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match method.as_str() {
        "" | "token" => {
            let (token, source) =
                if let Some(t) = settings.string("token")?.filter(|t| !t.trim().is_empty()) {
                    (t, "option `token`".to_owned())
                } else if let Some(t) = std::env::var("VAULT_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                {
                    (t, "VAULT_TOKEN".to_owned())
                } else {
                    let file = token_file().ok_or_else(|| no_token(name))?;
                    match std::fs::read_to_string(&file) {
                        Ok(t) if !t.trim().is_empty() => (t, file.display().to_string()),
                        Ok(_) => return Err(no_token(name)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Err(no_token(name));
                        }
                        Err(e) => {
                            return Err(StoreError::Config(format!(
                                "store {name:?}: cannot read the Vault token file {}: {e}",
                                file.display()
                            )));
                        }
                    }
                };
            let token = Zeroizing::new(token.trim().to_owned());
            if !header_safe(&token) {
                return Err(StoreError::Auth {
                    location: format!("store {name:?}"),
                    message: format!(
                        "the token from {source} contains characters a token cannot have"
                    ),
                });
            }
            Ok(Auth::Token { token, source })
        }
        "approle" => {
            let role_id = option_or_env(settings, &["role_id"], "VAULT_ROLE_ID")?;
            let secret_id = option_or_env(settings, &["secret_id"], "VAULT_SECRET_ID")?;
            let (Some(role_id), Some(secret_id)) = (role_id, secret_id) else {
                return Err(StoreError::Config(format!(
                    "store {name:?}: `auth: approle` needs a role id and a secret id: options \
                     `role_id` and `secret_id`, or VAULT_ROLE_ID and VAULT_SECRET_ID"
                )));
            };
            let mount = settings
                .string("auth_mount")?
                .map(|m| m.trim().trim_matches('/').to_owned())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "approle".to_owned());
            Ok(Auth::AppRole {
                mount,
                role_id: Zeroizing::new(role_id),
                secret_id: Zeroizing::new(secret_id),
            })
        }
        other => Err(StoreError::Config(format!(
            "store {name:?}: option `auth` must be `token` or `approle`, not {other:?}"
        ))),
    }
}

fn token_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".vault-token"))
}

fn no_token(name: &str) -> StoreError {
    StoreError::Auth {
        location: format!("store {name:?}"),
        message: "no Vault token: set the option `token`, VAULT_TOKEN or ~/.vault-token, or use \
                  `auth: approle`"
            .to_owned(),
    }
}

impl VaultStore {
    /// Opens the store: reads the options, builds the client and checks the credentials.
    pub async fn open(settings: &StoreSettings) -> Result<VaultStore, StoreError> {
        let name = settings.name.clone();
        let address = option_or_env(settings, &["url", "address"], "VAULT_ADDR")?.ok_or_else(|| {
            StoreError::Config(format!(
                "store {name:?}: no Vault address: set the option `url` (or `address`) or VAULT_ADDR"
            ))
        })?;
        // vaultrs panics on an address it cannot parse, so parse it here first.
        match url::Url::parse(&address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(StoreError::Config(format!(
                    "store {name:?}: the Vault address {address:?} is not an http(s) URL"
                )));
            }
        }
        let namespace = option_or_env(settings, &["namespace"], "VAULT_NAMESPACE")?
            .map(|ns| ns.trim_matches('/').to_owned())
            .filter(|ns| !ns.is_empty());
        if let Some(ns) = &namespace
            && !header_safe(ns)
        {
            return Err(StoreError::Config(format!(
                "store {name:?}: the namespace {ns:?} has characters a namespace cannot have"
            )));
        }
        let mount = settings
            .string("mount")?
            .map(|m| m.trim().trim_matches('/').to_owned())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "secret".to_owned());
        let destroy = flag(settings, "destroy")?;
        let auth = auth_settings(settings)?;

        let initial_token = match &auth {
            Auth::Token { token, .. } => token.to_string(),
            Auth::AppRole { .. } => String::new(),
        };
        let client_settings = VaultClientSettingsBuilder::default()
            .address(&address)
            .token(initial_token)
            .namespace(namespace)
            .timeout(Some(CALL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(format!("store {name:?}: {e}")))?;
        let client = VaultClient::new(client_settings)
            .map_err(|e| StoreError::Config(format!("store {name:?}: {}", chain(&e))))?;
        let mut store = VaultStore {
            name,
            address,
            mount,
            destroy,
            client,
        };
        match auth {
            Auth::Token { source, .. } => store.check_token(&source).await?,
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => store.login_approle(&mount, &role_id, &secret_id).await?,
        }
        Ok(store)
    }

    /// Where the store is, for errors about the store as a whole.
    fn store_location(&self) -> String {
        format!("Vault store {:?} at {}", self.name, self.address)
    }

    /// Where one secret is, for errors about it.
    fn location(&self, path: &str) -> String {
        format!("{}/{path} in Vault store {:?}", self.mount, self.name)
    }

    /// `auth/token/lookup-self`: does the server take the token?
    async fn check_token(&self, source: &str) -> Result<(), StoreError> {
        match self.lookup_self().await {
            Ok(()) => Ok(()),
            Err(
                f @ Failure::Status {
                    code: 401 | 403, ..
                },
            ) => Err(StoreError::Auth {
                location: self.store_location(),
                message: format!(
                    "the token from {source} was rejected ({}): it is invalid, expired or revoked",
                    f.describe()
                ),
            }),
            Err(f) => Err(self.error(self.store_location(), f)),
        }
    }

    async fn lookup_self(&self) -> Result<(), Failure> {
        let result = with_retry(|| async {
            vaultrs::token::lookup_self(&self.client)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .await;
        match result {
            // A 2xx whose body vaultrs does not model still means the token was accepted.
            Err(Failure::Other(_)) => Ok(()),
            other => other,
        }
    }

    /// Logs in with AppRole and keeps the token for the store's calls.
    async fn login_approle(
        &mut self,
        auth_mount: &str,
        role_id: &str,
        secret_id: &str,
    ) -> Result<(), StoreError> {
        let client = &self.client;
        let result = with_retry(|| async {
            vaultrs::auth::approle::login(client, auth_mount, role_id, secret_id)
                .await
                .map_err(Failure::from)
        })
        .await;
        match result {
            Ok(info) => {
                let token = Zeroizing::new(info.client_token);
                self.client.set_token(&token);
                Ok(())
            }
            // Vault answers a wrong role or secret id with 400 "invalid role or secret ID".
            Err(
                f @ Failure::Status {
                    code: 400 | 401 | 403,
                    ..
                },
            ) => Err(StoreError::Auth {
                location: self.store_location(),
                message: format!(
                    "AppRole login at auth/{auth_mount} failed ({})",
                    f.describe()
                ),
            }),
            Err(f) => Err(self.error(self.store_location(), f)),
        }
    }

    /// Turns a failure into a store error for `location`.
    fn error(&self, location: String, failure: Failure) -> StoreError {
        let message = failure.describe();
        match failure {
            Failure::Status { code: 401, .. } => StoreError::Auth { location, message },
            Failure::Status { code: 403, .. } => StoreError::Denied { location, message },
            f if f.retryable() => StoreError::Unavailable {
                location,
                message: format!("{message} (after {ATTEMPTS} attempts)"),
            },
            Failure::Budget => StoreError::Unavailable { location, message },
            Failure::Status { code: 404, .. } => StoreError::Config(format!(
                "{location}: {message} (is `mount: {}` a KV v2 mount{}?)",
                self.mount,
                self.client
                    .settings()
                    .namespace
                    .as_deref()
                    .map(|ns| format!(" in namespace {ns:?}"))
                    .unwrap_or_default()
            )),
            _ => StoreError::Other { location, message },
        }
    }

    /// A failure of a call on a secret. A 403 is checked against `lookup-self` once more: a token
    /// that expired or was revoked since the store was opened is an authentication error.
    async fn secret_error(&self, path: &str, failure: Failure) -> StoreError {
        let location = self.location(path);
        if failure.is_status(403)
            && let Err(
                f @ Failure::Status {
                    code: 401 | 403, ..
                },
            ) = self.lookup_self().await
        {
            return StoreError::Auth {
                location,
                message: format!("the token is no longer valid ({})", f.describe()),
            };
        }
        self.error(location, failure)
    }

    /// The KV path of a location.
    fn path<'a>(&self, location: &'a Location) -> Result<&'a str, StoreError> {
        match location {
            Location::Named(name) if !name.trim_matches('/').is_empty() => {
                Ok(name.trim_matches('/'))
            }
            other => Err(StoreError::Other {
                location: other.to_string(),
                message: format!(
                    "Vault store {:?} needs a KV path, and this location is not one",
                    self.name
                ),
            }),
        }
    }

    async fn read_path(&self, path: &str) -> Result<Option<Versioned>, StoreError> {
        let result = with_retry(|| async {
            let endpoint = ReadSecretRequest::builder()
                .mount(self.mount.as_str())
                .path(path)
                .build()
                .map_err(|e| Failure::Other(e.to_string()))?;
            vaultrs::api::exec_with_result(&self.client, endpoint)
                .await
                .map_err(Failure::from)
        })
        .await;
        let secret = match result {
            Ok(secret) => secret,
            // Missing, or the latest version soft-deleted or destroyed.
            Err(f) if f.is_missing() => return Ok(None),
            Err(f) => return Err(self.secret_error(path, f).await),
        };
        let meta = &secret.metadata;
        if meta.destroyed || !meta.deletion_time.is_empty() || secret.data.is_null() {
            return Ok(None);
        }
        match vault_decode(&secret.data) {
            Some(value) => Ok(Some(Versioned {
                value,
                version: Some(meta.version.to_string()),
            })),
            None => {
                let fields: Vec<&str> = secret
                    .data
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                Err(StoreError::Other {
                    location: self.location(path),
                    message: format!(
                        "the secret has no field `value` (version {}, fields: {})",
                        meta.version,
                        if fields.is_empty() {
                            "none".to_owned()
                        } else {
                            fields.join(", ")
                        }
                    ),
                })
            }
        }
    }
}

#[async_trait]
impl SecretStore for VaultStore {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        self.read_path(self.path(location)?).await
    }

    async fn read_many(
        &self,
        locations: &[Location],
    ) -> Vec<Result<Option<Versioned>, StoreError>> {
        // Indices rather than references: a closure over `&Location` trips the `Send` check of
        // the boxed future (a higher-ranked lifetime the compiler cannot prove general enough).
        futures::stream::iter(0..locations.len())
            .map(|i| self.read(&locations[i]))
            .buffered(READ_CONCURRENCY)
            .collect()
            .await
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let path = self.path(location)?;
        let data = vault_encode(value);
        let result = with_retry(|| async {
            vaultrs::kv2::set(&self.client, &self.mount, path, &data)
                .await
                .map_err(Failure::from)
        })
        .await;
        match result {
            Ok(meta) => Ok(meta.version.to_string()),
            Err(f) => Err(self.secret_error(path, f).await),
        }
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let path = self.path(location)?;
        let result = with_retry(|| async {
            let outcome = if self.destroy {
                let endpoint = DeleteSecretMetadataRequest::builder()
                    .mount(self.mount.as_str())
                    .path(path)
                    .build()
                    .map_err(|e| Failure::Other(e.to_string()))?;
                vaultrs::api::exec_with_empty(&self.client, endpoint).await
            } else {
                let endpoint = DeleteLatestSecretVersionRequest::builder()
                    .mount(self.mount.as_str())
                    .path(path)
                    .build()
                    .map_err(|e| Failure::Other(e.to_string()))?;
                vaultrs::api::exec_with_empty(&self.client, endpoint).await
            };
            outcome.map_err(Failure::from)
        })
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(f) if f.is_missing() => Ok(()),
            Err(f) => Err(self.secret_error(path, f).await),
        }
    }

    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        let path = self.path(location)?;
        let result = with_retry(|| async {
            let endpoint = ReadSecretMetadataRequest::builder()
                .mount(self.mount.as_str())
                .path(path)
                .build()
                .map_err(|e| Failure::Other(e.to_string()))?;
            vaultrs::api::exec_with_result(&self.client, endpoint)
                .await
                .map_err(Failure::from)
        })
        .await;
        match result {
            Ok(meta) => {
                let latest = meta.versions.get(&meta.current_version.to_string());
                Ok(latest.is_some_and(|v| !v.destroyed && v.deletion_time.is_empty()))
            }
            Err(f) if f.is_missing() => Ok(false),
            // Policies often grant `<mount>/data/*` only: fall back to reading the value.
            Err(f) if f.is_status(403) => Ok(self.read_path(path).await?.is_some()),
            Err(f) => Err(self.secret_error(path, f).await),
        }
    }
}

/// Opens the store for the registry.
pub async fn open(settings: &StoreSettings) -> Result<Arc<dyn SecretStore>, StoreError> {
    Ok(Arc::new(VaultStore::open(settings).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> StoreSettings {
        StoreSettings {
            name: "v".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            identity: None,
        }
    }

    #[test]
    fn retry_policy_covers_transient_failures_only() {
        let status = |code| Failure::Status {
            code,
            errors: vec![],
        };
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(Failure::Transport("refused".into()).retryable());
        assert!(!status(403).retryable());
        assert!(!status(404).retryable());
        assert!(!status(400).retryable());
        assert!(!Failure::Budget.retryable());
    }

    #[test]
    fn headers_vaultrs_would_panic_on_are_refused() {
        assert!(header_safe("hvs.abc-DEF_123"));
        assert!(!header_safe("tok\nen"));
        assert!(!header_safe("tok en"));
        assert!(!header_safe("ünï"));
        assert!(!header_safe(""));
    }

    #[test]
    fn bad_options_are_configuration_errors_naming_the_option() {
        let err = flag(
            &settings(serde_json::json!({"destroy": "maybe"})),
            "destroy",
        );
        assert!(matches!(err, Err(StoreError::Config(m)) if m.contains("`destroy`")));
        assert!(flag(&settings(serde_json::json!({"destroy": true})), "destroy").unwrap_or(false));
        let err = auth_settings(&settings(serde_json::json!({"auth": "kerberos"})));
        assert!(matches!(err, Err(StoreError::Config(m)) if m.contains("`auth`")));
    }

    #[tokio::test]
    async fn an_address_that_is_not_a_url_is_a_configuration_error() {
        for address in ["not a url", "ftp://vault:8200", "127.0.0.1:8200"] {
            let s = settings(serde_json::json!({"address": address, "token": "t"}));
            match VaultStore::open(&s).await {
                Err(StoreError::Config(m)) => assert!(m.contains("address"), "{m}"),
                Err(e) => panic!("{address}: expected a configuration error, got {e}"),
                Ok(_) => panic!("{address}: opened"),
            }
        }
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let long = "x".repeat(1000);
        assert_eq!(excerpt(&long).len(), BODY_EXCERPT + 3);
        assert_eq!(excerpt(" short "), "short");
    }
}
