//! GCP Secret Manager: the `gcp/secretmanager` backend (legacy `google-secret-manager`, `gsm`).
//!
//! One secret per [`Location::Named`] in `projects/<project_id>`; each write adds a version
//! (creating the secret first when missing, replicated automatically or to `locations`), each
//! read accesses `latest`. Values are JSON, as Atmos stores them. The version id is the version
//! number at the end of the version's resource name.
//!
//! Credentials: `options.credentials` (a path to, or the text of, a credentials JSON file),
//! else Application Default Credentials. With an `endpoint` and no `credentials` the client is
//! anonymous, as emulators expect.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_auth::credentials::{
    Credentials, anonymous, external_account, impersonated, service_account, user_account,
};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_secretmanager_v1::Error as GcpError;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::replication::user_managed::Replica;
use google_cloud_secretmanager_v1::model::replication::{Automatic, UserManaged};
use google_cloud_secretmanager_v1::model::{Replication, Secret, SecretPayload};
use tokio::sync::OnceCell;

use super::encoding::{json_decode, json_encode};
use super::{Location, SecretStore, StoreError, StoreSettings, Versioned};
use crate::sensitive::SecretValue;

/// One HTTP attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries (UNAVAILABLE, connection failures) stop after this many attempts or this long.
const MAX_ATTEMPTS: u32 = 5;
const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// The Secret Manager store. The client is built on first use: building it is async and
/// reads credential files, and opening a store must not do I/O.
pub struct GcpSecretManager {
    store: String,
    project: String,
    credentials: Option<serde_json::Value>,
    endpoint: Option<String>,
    locations: Vec<String>,
    client: OnceCell<SecretManagerService>,
}

impl GcpSecretManager {
    /// Checks the options (`project_id` or `GOOGLE_CLOUD_PROJECT`, `credentials`, `locations`,
    /// `endpoint`). Reads the credentials file when one is named; no network.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let name = &settings.name;
        let project = settings
            .string("project_id")?
            .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                StoreError::Config(format!(
                    "store {name:?}: option `project_id` is required (or GOOGLE_CLOUD_PROJECT)"
                ))
            })?;
        let credentials = match settings.options.get("credentials") {
            None | Some(serde_json::Value::Null) => None,
            Some(v @ serde_json::Value::Object(_)) => Some(v.clone()),
            Some(serde_json::Value::String(s)) => Some(credentials_json(name, s)?),
            Some(_) => {
                return Err(StoreError::Config(format!(
                    "store {name:?}: option `credentials` must be a path or a JSON document"
                )));
            }
        };
        Ok(Self {
            store: name.clone(),
            project,
            credentials,
            endpoint: settings.string("endpoint")?,
            locations: settings.string_list("locations")?,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&SecretManagerService, StoreError> {
        self.client
            .get_or_try_init(|| async {
                let config = |e: String| StoreError::Config(format!("store {:?}: {e}", self.store));
                let backoff = ExponentialBackoffBuilder::new()
                    .with_initial_delay(Duration::from_millis(200))
                    .with_maximum_delay(Duration::from_secs(5))
                    .build()
                    .map_err(|e| config(e.to_string()))?;
                let mut builder = SecretManagerService::builder()
                    .with_retry_policy(
                        Aip194Strict
                            .with_attempt_limit(MAX_ATTEMPTS)
                            .with_time_limit(RETRY_BUDGET),
                    )
                    .with_backoff_policy(backoff)
                    .with_attempt_timeout(ATTEMPT_TIMEOUT);
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                match (&self.credentials, &self.endpoint) {
                    (Some(json), _) => {
                        builder = builder.with_credentials(credentials_from(json).map_err(config)?)
                    }
                    (None, Some(_)) => {
                        builder = builder.with_credentials(anonymous::Builder::new().build())
                    }
                    (None, None) => {}
                }
                builder
                    .build()
                    .await
                    .map_err(|e| config(format!("GCP client: {e}")))
            })
            .await
    }

    fn secret_name(&self, name: &str) -> String {
        format!("projects/{}/secrets/{name}", self.project)
    }

    fn replication(&self) -> Replication {
        if self.locations.is_empty() {
            Replication::new().set_automatic(Automatic::new())
        } else {
            let replicas = self
                .locations
                .iter()
                .map(|l| Replica::new().set_location(l));
            Replication::new().set_user_managed(UserManaged::new().set_replicas(replicas))
        }
    }

    async fn add_version(
        &self,
        client: &SecretManagerService,
        name: &str,
        value: &SecretValue,
    ) -> Result<String, GcpError> {
        let version = client
            .add_secret_version()
            .set_parent(self.secret_name(name))
            .set_payload(SecretPayload::new().set_data(json_encode(value).into_bytes()))
            .send()
            .await?;
        Ok(version_of(&version.name).unwrap_or_default())
    }
}

/// `credentials` is either the JSON text itself or a path to it.
fn credentials_json(store: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    let bad = |e: String| StoreError::Config(format!("store {store:?}: option `credentials`: {e}"));
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")));
    }
    let body = std::fs::read_to_string(text).map_err(|e| bad(format!("{text}: {e}")))?;
    serde_json::from_str(&body).map_err(|e| bad(format!("{text}: not valid JSON: {e}")))
}

/// Builds credentials from a credentials file's JSON, by its `type`.
fn credentials_from(json: &serde_json::Value) -> Result<Credentials, String> {
    let kind = json
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    let json = json.clone();
    let built = match kind {
        "service_account" => service_account::Builder::new(json).build(),
        "authorized_user" => user_account::Builder::new(json).build(),
        "external_account" => external_account::Builder::new(json).build(),
        "impersonated_service_account" => impersonated::Builder::new(json).build(),
        other => return Err(format!("credentials of type {other:?} are not supported")),
    };
    built.map_err(|e| format!("credentials: {e}"))
}

/// The version number at the end of `projects/P/secrets/S/versions/N`.
pub fn version_of(name: &str) -> Option<String> {
    let (_, version) = name.rsplit_once("/versions/")?;
    (!version.is_empty() && !version.contains('/')).then(|| version.to_owned())
}

/// Maps an SDK error to a [`StoreError`] naming the location. (NOT_FOUND is handled by callers.)
pub fn map_error(location: &Location, e: &GcpError) -> StoreError {
    let location = location.to_string();
    // Add the causes (a refused connection, a TLS failure) that the top error leaves out.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    let code = e.status().map(|s| s.code);
    let http = e.http_status_code();
    if e.is_authentication() || code == Some(Code::Unauthenticated) || http == Some(401) {
        StoreError::Auth { location, message }
    } else if code == Some(Code::PermissionDenied) || http == Some(403) {
        StoreError::Denied { location, message }
    } else if e.is_timeout()
        || e.is_exhausted()
        || e.is_connect()
        || e.is_io()
        || e.is_transport()
        || matches!(
            code,
            Some(Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted)
        )
        || matches!(http, Some(429 | 500..=599))
    {
        StoreError::Unavailable { location, message }
    } else {
        StoreError::Other { location, message }
    }
}

fn is_code(e: &GcpError, code: Code) -> bool {
    e.status().is_some_and(|s| s.code == code)
}

fn named(location: &Location) -> Result<&str, StoreError> {
    location.native_name("gcp/secretmanager")
}

#[async_trait]
impl SecretStore for GcpSecretManager {
    fn kind(&self) -> &'static str {
        "gcp/secretmanager"
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let name = named(location)?;
        let client = self.client().await?;
        let access = client
            .access_secret_version()
            .set_name(format!("{}/versions/latest", self.secret_name(name)))
            .send()
            .await;
        let response = match access {
            Ok(r) => r,
            // A secret without an enabled version reads as missing too.
            Err(e) if is_code(&e, Code::NotFound) || is_code(&e, Code::FailedPrecondition) => {
                return Ok(None);
            }
            Err(e) => return Err(map_error(location, &e)),
        };
        let Some(payload) = response.payload else {
            return Ok(None);
        };
        let stored = SecretValue::new(String::from_utf8_lossy(&payload.data).into_owned());
        Ok(Some(Versioned {
            value: json_decode(stored.expose()),
            version: version_of(&response.name),
        }))
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let name = named(location)?;
        let client = self.client().await?;
        match self.add_version(client, name, value).await {
            Ok(version) => return Ok(version),
            Err(e) if is_code(&e, Code::NotFound) => {}
            Err(e) => return Err(map_error(location, &e)),
        }
        let created = client
            .create_secret()
            .set_parent(format!("projects/{}", self.project))
            .set_secret_id(name)
            .set_secret(Secret::new().set_replication(self.replication()))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Created concurrently by someone else: fine.
            Err(e) if is_code(&e, Code::AlreadyExists) => {}
            Err(e) => return Err(map_error(location, &e)),
        }
        self.add_version(client, name, value)
            .await
            .map_err(|e| map_error(location, &e))
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let name = named(location)?;
        let client = self.client().await?;
        match client
            .delete_secret()
            .set_name(self.secret_name(name))
            .send()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_code(&e, Code::NotFound) => Ok(()),
            Err(e) => Err(map_error(location, &e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use google_cloud_gax::error::rpc::Status;

    fn settings(options: serde_json::Value) -> StoreSettings {
        StoreSettings {
            name: "gsm".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            identity: None,
        }
    }

    fn service(code: Code) -> GcpError {
        GcpError::service(
            Status::default()
                .set_code(code)
                .set_message("from the server"),
        )
    }

    #[test]
    fn options_are_checked() {
        let err = GcpSecretManager::open(&settings(serde_json::json!({"project_id": {"a": 1}})))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`project_id` must be a string"),
            "{err}"
        );
        let err = GcpSecretManager::open(&settings(
            serde_json::json!({"project_id": "p", "locations": [1]}),
        ))
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("`locations` must be a list"),
            "{err}"
        );
        let err = GcpSecretManager::open(&settings(
            serde_json::json!({"project_id": "p", "credentials": 3}),
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("`credentials` must be"), "{err}");
        let err = GcpSecretManager::open(&settings(
            serde_json::json!({"project_id": "p", "credentials": "/nonexistent/creds.json"}),
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nonexistent/creds.json"), "{err}");
        let err = GcpSecretManager::open(&settings(
            serde_json::json!({"project_id": "p", "credentials": "{not json"}),
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("not valid JSON"), "{err}");

        let store = GcpSecretManager::open(&settings(
            serde_json::json!({"project_id": "p", "locations": ["us-east1", "europe-west1"]}),
        ))
        .unwrap();
        assert_eq!(store.secret_name("a_b"), "projects/p/secrets/a_b");
        let replicas = store.replication();
        let managed = replicas.user_managed().unwrap();
        let locs: Vec<_> = managed
            .replicas
            .iter()
            .map(|r| r.location.as_str())
            .collect();
        assert_eq!(locs, ["us-east1", "europe-west1"]);
        let auto = GcpSecretManager::open(&settings(serde_json::json!({"project_id": "p"})))
            .unwrap()
            .replication();
        assert!(auto.automatic().is_some());
    }

    #[test]
    fn unsupported_credential_type_is_named() {
        let err = credentials_from(&serde_json::json!({"type": "gdch_thing"}))
            .err()
            .unwrap();
        assert!(err.contains("gdch_thing"), "{err}");
    }

    #[test]
    fn version_comes_from_the_resource_name() {
        assert_eq!(
            version_of("projects/123/secrets/app_db/versions/7").as_deref(),
            Some("7")
        );
        assert_eq!(version_of("projects/123/secrets/app_db"), None);
        assert_eq!(version_of("projects/123/secrets/app_db/versions/"), None);
    }

    #[test]
    fn errors_map_to_store_errors() {
        let loc = Location::Named("app_db".into());
        let cases = [
            (Code::Unauthenticated, "auth"),
            (Code::PermissionDenied, "denied"),
            (Code::Unavailable, "unavailable"),
            (Code::DeadlineExceeded, "unavailable"),
            (Code::InvalidArgument, "other"),
        ];
        for (code, want) in cases {
            let got = match map_error(&loc, &service(code)) {
                StoreError::Auth { .. } => "auth",
                StoreError::Denied { .. } => "denied",
                StoreError::Unavailable { .. } => "unavailable",
                StoreError::Other { .. } => "other",
                _ => "?",
            };
            assert_eq!(got, want, "{code:?}");
        }
        assert!(
            map_error(&loc, &service(Code::Unavailable))
                .to_string()
                .contains("app_db")
        );
        let refused = GcpError::connect("connection refused");
        assert!(matches!(
            map_error(&loc, &refused),
            StoreError::Unavailable { .. }
        ));
        assert!(is_code(&service(Code::NotFound), Code::NotFound));
    }
}
