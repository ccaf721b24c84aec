//! Azure Key Vault secrets: the `azure/keyvault` backend (legacy `azure-key-vault`).
//!
//! One Key Vault secret per [`Location::Named`] (the resolution layer already made the name
//! valid for Key Vault). Values are JSON, as Atmos stores them. The version id is the last
//! segment of the secret's id. Delete is Key Vault's soft delete; with `purge: true` the deleted
//! secret is also purged. A soft-deleted secret reads as missing, and writing to it first
//! recovers it (Key Vault refuses to set a secret that is deleted but recoverable).
//!
//! Credentials: `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` (service
//! principal), then workload identity (`AZURE_FEDERATED_TOKEN_FILE`), then the developer tools
//! (`az`, `azd`), then managed identity: the first that yields a token is kept.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, ExponentialRetryOptions, Request, RetryOptions};
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, WorkloadIdentityCredential,
};
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{ResourceId, SecretClient, SecretClientOptions};

use super::encoding::{json_decode, json_encode};
use super::{Location, SecretStore, StoreError, StoreSettings, Versioned};
use crate::sensitive::SecretValue;

/// One HTTP attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries (429, 5xx, connection failures) stop after this many or this long.
const MAX_RETRIES: u32 = 4;
const RETRY_BUDGET_SECS: i64 = 30;
/// Deletion and recovery are asynchronous in Key Vault: poll this often, this many times.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const POLL_ATTEMPTS: u32 = 60;

/// The Key Vault store.
pub struct AzureKeyVault {
    client: SecretClient,
    purge: bool,
}

impl AzureKeyVault {
    /// Builds the client from `options.vault_url` (required; also the endpoint override) and
    /// `options.purge`. Does no I/O.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let name = &settings.name;
        let vault_url = settings.string("vault_url")?.ok_or_else(|| {
            StoreError::Config(format!("store {name:?}: option `vault_url` is required"))
        })?;
        let purge = match settings.options.get("purge") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => {
                return Err(StoreError::Config(format!(
                    "store {name:?}: option `purge` must be true or false"
                )));
            }
        };
        let url = azure_core::http::Url::parse(&vault_url).map_err(|e| {
            StoreError::Config(format!(
                "store {name:?}: option `vault_url` {vault_url:?}: {e}"
            ))
        })?;
        // The SDK refuses to send a token over plain HTTP; say so before any request does.
        if url.scheme() != "https" {
            return Err(StoreError::Config(format!(
                "store {name:?}: option `vault_url` must be an https URL, not {vault_url:?}"
            )));
        }
        // The challenge's resource must match the vault's domain, which an emulator on loopback
        // cannot do; a real vault keeps the check (it stops tokens going to a look-alike host).
        let loopback = matches!(
            url.host_str(),
            Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
        );
        let options = SecretClientOptions {
            client_options: ClientOptions {
                retry: RetryOptions::exponential(ExponentialRetryOptions {
                    max_retries: MAX_RETRIES,
                    max_total_elapsed: azure_core::time::Duration::seconds(RETRY_BUDGET_SECS),
                    max_delay: azure_core::time::Duration::seconds(5),
                    ..Default::default()
                }),
                per_try_policies: vec![Arc::new(AttemptTimeout(ATTEMPT_TIMEOUT))],
                ..Default::default()
            },
            verify_challenge_resource: Some(!loopback),
            ..Default::default()
        };
        let credential = Chain::standard()
            .map_err(|e| StoreError::Config(format!("store {name:?}: Azure credentials: {e}")))?;
        let client = SecretClient::new(&vault_url, credential, Some(options))
            .map_err(|e| StoreError::Config(format!("store {name:?}: option `vault_url`: {e}")))?;
        Ok(Self { client, purge })
    }

    async fn set(&self, name: &str, value: &SecretValue) -> azure_core::Result<String> {
        let params = SetSecretParameters {
            value: Some(json_encode(value)),
            ..Default::default()
        };
        let secret = self
            .client
            .set_secret(name, params.try_into()?, None)
            .await?
            .into_model()?;
        Ok(secret
            .id
            .as_deref()
            .and_then(version_of)
            .unwrap_or_default())
    }

    /// Polls `check` until it answers `true` or the poll budget is spent.
    async fn poll<F, Fut>(
        &self,
        location: &Location,
        what: &str,
        mut check: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, StoreError>>,
    {
        for _ in 0..POLL_ATTEMPTS {
            if check().await? {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Err(StoreError::Unavailable {
            location: location.to_string(),
            message: format!("Key Vault did not finish {what} in time"),
        })
    }
}

/// The version id in a Key Vault secret id (`https://VAULT/secrets/NAME/VERSION`).
pub fn version_of(id: &str) -> Option<String> {
    ResourceId::from_str(id).ok()?.version
}

/// The HTTP status of a Key Vault error, if the service answered.
fn status(e: &azure_core::Error) -> Option<u16> {
    e.http_status().map(u16::from)
}

/// Maps an SDK error to a [`StoreError`] naming the location. (404 is handled by callers.)
pub fn map_error(location: &Location, e: &azure_core::Error) -> StoreError {
    let location = location.to_string();
    // The retry policy's words hide the cause (a refused connection, a timeout): add the chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    match (e.kind(), status(e)) {
        (_, Some(401)) | (ErrorKind::Credential, _) => StoreError::Auth { location, message },
        (_, Some(403)) => StoreError::Denied { location, message },
        (_, Some(408 | 429 | 500..=599)) | (ErrorKind::Connection | ErrorKind::Io, _) => {
            StoreError::Unavailable { location, message }
        }
        _ => StoreError::Other { location, message },
    }
}

fn named(location: &Location) -> Result<&str, StoreError> {
    location.native_name("azure/keyvault")
}

#[async_trait]
impl SecretStore for AzureKeyVault {
    fn kind(&self) -> &'static str {
        "azure/keyvault"
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let name = named(location)?;
        let secret = match self.client.get_secret(name, None).await {
            Ok(rsp) => rsp.into_model().map_err(|e| map_error(location, &e))?,
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(map_error(location, &e)),
        };
        let version = secret.id.as_deref().and_then(version_of);
        // The SDK hands the value over as a plain String: move it into a SecretValue at once.
        Ok(secret.value.map(|stored| {
            let stored = SecretValue::new(stored);
            Versioned {
                value: json_decode(stored.expose()),
                version,
            }
        }))
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let name = named(location)?;
        match self.set(name, value).await {
            Ok(version) => return Ok(version),
            // Deleted but recoverable: recover it, wait until it is back, then set.
            Err(e) if status(&e) == Some(409) => {}
            Err(e) => return Err(map_error(location, &e)),
        }
        match self.client.recover_deleted_secret(name, None).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(409) => {}
            Err(e) => return Err(map_error(location, &e)),
        }
        self.poll(location, "recovering the secret", || async {
            match self.client.get_secret(name, None).await {
                Ok(_) => Ok(true),
                Err(e) if status(&e) == Some(404) => Ok(false),
                Err(e) => Err(map_error(location, &e)),
            }
        })
        .await?;
        self.set(name, value)
            .await
            .map_err(|e| map_error(location, &e))
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let name = named(location)?;
        match self.client.delete_secret(name, None).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(map_error(location, &e)),
        }
        if !self.purge {
            return Ok(());
        }
        // Purging works once the deletion has finished; until then Key Vault answers 409.
        self.poll(location, "deleting the secret", || async {
            match self.client.purge_deleted_secret(name, None).await {
                Ok(_) => Ok(true),
                Err(e) if status(&e) == Some(404) => Ok(true),
                Err(e) if status(&e) == Some(409) => Ok(false),
                Err(e) => Err(map_error(location, &e)),
            }
        })
        .await
    }
}

/// Gives each HTTP attempt a deadline, so a silent server cannot hang a read.
#[derive(Debug)]
struct AttemptTimeout(Duration);

#[async_trait]
impl Policy for AttemptTimeout {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((first, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "no transport policy",
            ));
        };
        match tokio::time::timeout(self.0, first.send(ctx, request, rest)).await {
            Ok(result) => result,
            Err(_) => Err(azure_core::Error::with_message(
                ErrorKind::Io,
                format!("no answer within {:?}", self.0),
            )),
        }
    }
}

/// The standard credential chain; the first source that yields a token is used from then on.
#[derive(Debug)]
struct Chain {
    sources: Vec<Arc<dyn TokenCredential>>,
    chosen: AtomicUsize,
}

impl Chain {
    fn standard() -> azure_core::Result<Arc<Self>> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut sources: Vec<Arc<dyn TokenCredential>> = Vec::new();
        if let (Some(tenant), Some(client), Some(secret)) = (
            env("AZURE_TENANT_ID"),
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
        ) {
            sources.push(ClientSecretCredential::new(
                &tenant,
                client,
                Secret::new(secret),
                None,
            )?);
        }
        if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            sources.push(WorkloadIdentityCredential::new(None)?);
        }
        // Developer tools before managed identity: `az`/`azd` fail at once where they are absent
        // or logged out, while the instance metadata endpoint that managed identity asks does not
        // answer at all off Azure; its attempts are bounded so that such a host fails in time.
        sources.push(DeveloperToolsCredential::new(None)?);
        sources.push(ManagedIdentityCredential::new(Some(
            ManagedIdentityCredentialOptions {
                client_options: ClientOptions {
                    retry: RetryOptions::exponential(ExponentialRetryOptions {
                        max_retries: 3,
                        max_total_elapsed: azure_core::time::Duration::seconds(20),
                        ..Default::default()
                    }),
                    per_try_policies: vec![Arc::new(AttemptTimeout(Duration::from_secs(5)))],
                    ..Default::default()
                },
                ..Default::default()
            },
        ))?);
        Ok(Arc::new(Self {
            sources,
            chosen: AtomicUsize::new(usize::MAX),
        }))
    }
}

#[async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some(source) = self.sources.get(chosen) {
            return source.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.chosen.store(i, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("no Azure credential available: {}", failures.join("; ")),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use azure_core::http::StatusCode;

    fn settings(options: serde_json::Value) -> StoreSettings {
        StoreSettings {
            name: "kv".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            identity: None,
        }
    }

    fn http(code: u16) -> azure_core::Error {
        ErrorKind::HttpResponse {
            status: StatusCode::from(code),
            error_code: None,
            raw_response: None,
        }
        .into_error()
    }

    #[test]
    fn options_are_checked() {
        let err = AzureKeyVault::open(&settings(serde_json::json!({})))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`vault_url` is required"), "{err}");
        let err = AzureKeyVault::open(&settings(serde_json::json!({"vault_url": ["x"]})))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`vault_url` must be a string"),
            "{err}"
        );
        let err = AzureKeyVault::open(&settings(serde_json::json!({"vault_url": "not a url"})))
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::Config(_)), "{err}");
        let err = AzureKeyVault::open(&settings(
            serde_json::json!({"vault_url": "http://127.0.0.1:8443"}),
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("must be an https URL"), "{err}");
        let err = AzureKeyVault::open(&settings(
            serde_json::json!({"vault_url": "https://v.vault.azure.net", "purge": "yes"}),
        ))
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("`purge` must be true or false"),
            "{err}"
        );
        let store = AzureKeyVault::open(&settings(
            serde_json::json!({"vault_url": "https://v.vault.azure.net/", "purge": true}),
        ))
        .unwrap();
        assert!(store.purge);
    }

    #[test]
    fn version_comes_from_the_secret_id() {
        assert_eq!(
            version_of("https://v.vault.azure.net/secrets/app-db/0123abcd").as_deref(),
            Some("0123abcd")
        );
        assert_eq!(version_of("https://v.vault.azure.net/secrets/app-db"), None);
        assert_eq!(version_of("not an id"), None);
    }

    #[test]
    fn errors_map_to_store_errors() {
        let loc = Location::Named("app-db".into());
        assert!(matches!(
            map_error(&loc, &http(401)),
            StoreError::Auth { .. }
        ));
        assert!(matches!(
            map_error(&loc, &http(403)),
            StoreError::Denied { .. }
        ));
        assert!(matches!(
            map_error(&loc, &http(429)),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            map_error(&loc, &http(503)),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            map_error(&loc, &http(400)),
            StoreError::Other { .. }
        ));
        let cred = azure_core::Error::with_message(ErrorKind::Credential, "no token");
        assert!(matches!(map_error(&loc, &cred), StoreError::Auth { .. }));
        let io = azure_core::Error::with_message(ErrorKind::Io, "refused");
        let e = map_error(&loc, &io);
        assert!(matches!(e, StoreError::Unavailable { .. }));
        assert!(e.to_string().contains("app-db"), "{e}");
        assert_eq!(status(&http(404)), Some(404));
    }
}
