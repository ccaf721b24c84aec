//! What the two AWS stores share: building the SDK configuration from a store's `options`, and
//! turning SDK errors into [`StoreError`]s. No SDK type leaves the AWS store files.
//!
//! Every call is bounded: a connect timeout, a per-attempt timeout and an overall operation
//! timeout, with the SDK's standard retry mode (jittered exponential backoff, throttling and 5xx
//! retried) capped at [`MAX_ATTEMPTS`] attempts inside that budget.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};

use super::{StoreError, StoreSettings, Versioned};

/// Time to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for one attempt of a call (request sent to response read).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole call, retries and backoff included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per call (the first one included).
pub const MAX_ATTEMPTS: u32 = 4;

/// SDK configurations for reading and for writing: the same unless `read_role_arn` or
/// `write_role_arn` makes one of them assume a role.
pub struct AwsConfigs {
    /// For reads and existence checks.
    pub read: SdkConfig,
    /// For writes and deletes.
    pub write: SdkConfig,
}

/// Loads the standard credential chain (environment, profile, SSO, web identity, container,
/// instance metadata), with `region` and `endpoint` / `endpoint_url` from the store's options.
pub async fn load(settings: &StoreSettings) -> Result<AwsConfigs, StoreError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = settings.string("region")? {
        loader = loader.region(Region::new(region));
    }
    let endpoint = match settings.string("endpoint")? {
        Some(e) => Some(e),
        None => settings.string("endpoint_url")?,
    };
    if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
        loader = loader.endpoint_url(endpoint);
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(StoreError::Config(format!(
            "store {:?}: no AWS region: set `options.region` or AWS_REGION",
            settings.name
        )));
    }
    Ok(AwsConfigs {
        read: assume(&base, settings.string("read_role_arn")?, "read").await,
        write: assume(&base, settings.string("write_role_arn")?, "write").await,
    })
}

/// `base` with credentials from STS AssumeRole on `role_arn` (refreshed by the SDK), or `base`
/// itself when no role is set.
async fn assume(base: &SdkConfig, role_arn: Option<String>, purpose: &str) -> SdkConfig {
    let Some(role_arn) = role_arn.filter(|r| !r.is_empty()) else {
        return base.clone();
    };
    let provider = AssumeRoleProvider::builder(role_arn)
        .session_name(format!("terraform-provider-atmos-{purpose}"))
        .configure(base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// An SDK failure reduced to what [`StoreError`] needs; cloneable, so that one failed batch call
/// can answer for every location in it.
#[derive(Clone, Debug)]
pub struct Fault {
    kind: FaultKind,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    Auth,
    Denied,
    Unavailable,
    Other,
}

/// Service error codes that mean the credentials are missing, wrong or expired.
const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// Service error codes that mean the caller is known but not allowed.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "KMSAccessDeniedException",
];

/// Codes that only remain after the retry budget is spent.
const UNAVAILABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "ServiceUnavailable",
];

impl Fault {
    /// Classifies an SDK error.
    pub fn of<E>(err: &SdkError<E>) -> Fault
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut message = chain(err);
        let kind = match err {
            SdkError::ServiceError(service) => {
                // An error body without a code the SDK understood (moto answers some JSON
                // services in XML): look for a known code in it.
                let code = match service.err().code().filter(|c| !c.is_empty()) {
                    Some(code) => code,
                    None => known_code(service.raw().body().bytes()).unwrap_or("UnknownError"),
                };
                // The service's own words; the full error context repeats them with debug noise.
                message = format!(
                    "{code}: {} (HTTP {})",
                    service.err().message().unwrap_or("no message"),
                    service.raw().status().as_u16()
                );
                match classify(code) {
                    FaultKind::Other if service.raw().status().is_server_error() => {
                        FaultKind::Unavailable
                    }
                    kind => kind,
                }
            }
            _ if caused_by_credentials(err) => FaultKind::Auth,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => FaultKind::Unavailable,
            SdkError::ResponseError(response) => {
                // An error body the SDK could not parse (a proxy's page, or moto's XML errors on
                // JSON services): look for a known code in it, else go by the status.
                let raw = response.raw();
                let known = known_code(raw.body().bytes());
                let status = raw.status();
                message = format!("HTTP {}: {message}", status.as_u16());
                match known {
                    Some(code) => {
                        message = format!("{code} (HTTP {})", status.as_u16());
                        classify(code)
                    }
                    None if status.is_client_error() => FaultKind::Other,
                    None => FaultKind::Unavailable,
                }
            }
            _ => FaultKind::Other,
        };
        Fault { kind, message }
    }

    /// A per-item error of a batch call (`code`, `message` as the service reported them).
    pub fn item(code: &str, message: &str) -> Fault {
        Fault {
            kind: classify(code),
            message: format!("{code}: {message}"),
        }
    }

    /// Whether the backend's message (or code) passes `test`.
    pub fn is(&self, test: impl Fn(&str) -> bool) -> bool {
        test(&self.message)
    }

    /// The same fault with `secret` (a value this call sent) blanked out of the message, in case
    /// a server echoes request fields in its error text.
    pub fn without(mut self, secret: &str) -> Fault {
        if secret.len() >= 4 {
            self.message = self.message.replace(secret, "***");
        }
        self
    }

    /// The error for `location`.
    pub fn at(&self, location: &str) -> StoreError {
        let location = location.to_owned();
        let message = self.message.clone();
        match self.kind {
            FaultKind::Auth => StoreError::Auth { location, message },
            FaultKind::Denied => StoreError::Denied { location, message },
            FaultKind::Unavailable => StoreError::Unavailable {
                location,
                message: format!(
                    "{message} (gave up after at most {MAX_ATTEMPTS} attempts within \
                     {OPERATION_TIMEOUT:?})"
                ),
            },
            FaultKind::Other => StoreError::Other { location, message },
        }
    }
}

/// An authentication or access code found in a raw error body.
fn known_code(body: Option<&[u8]>) -> Option<&'static str> {
    let body = String::from_utf8_lossy(body?);
    AUTH_CODES
        .iter()
        .chain(DENIED_CODES)
        .find(|code| body.contains(*code))
        .copied()
}

/// The kind of fault a service error code means.
fn classify(code: &str) -> FaultKind {
    if AUTH_CODES.contains(&code) {
        FaultKind::Auth
    } else if DENIED_CODES.contains(&code) {
        FaultKind::Denied
    } else if UNAVAILABLE_CODES.contains(&code) {
        FaultKind::Unavailable
    } else {
        FaultKind::Other
    }
}

/// An error and its causes, `: `-joined, without the debug dump the SDK's own context adds.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Whether credential resolution (not the service) failed: no credentials in the chain, a broken
/// profile, a failed AssumeRole.
fn caused_by_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Reads `ids` (sorted, deduplicated by the caller) in chunks of `size`, `parallel` chunks at a
/// time, and spreads the results: every id of a chunk gets its own answer (absent = missing), or
/// the chunk's fault when the whole call failed. Shared by SSM `GetParameters` and Secrets
/// Manager `BatchGetSecretValue`.
pub async fn in_batches<F, Fut>(
    ids: &[String],
    size: usize,
    parallel: usize,
    batch: F,
) -> HashMap<String, Result<Option<Versioned>, Fault>>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<
            Output = Result<HashMap<String, Result<Option<Versioned>, Fault>>, Fault>,
        >,
{
    use futures::StreamExt;
    let batches: Vec<_> = futures::stream::iter(ids.chunks(size).map(<[String]>::to_vec))
        .map(|chunk| {
            let call = batch(chunk.clone());
            async move { (chunk, call.await) }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut found = HashMap::new();
    for (chunk, result) in batches {
        match result {
            Ok(mut items) => {
                for id in chunk {
                    let item = items.remove(&id).unwrap_or(Ok(None));
                    found.insert(id, item);
                }
            }
            Err(fault) => {
                for id in chunk {
                    found.insert(id, Err(fault.clone()));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_item_errors_are_classified_and_name_the_location() {
        let cases = [
            ("AccessDeniedException", "Denied"),
            ("UnrecognizedClientException", "Auth"),
            ("ThrottlingException", "Unavailable"),
            ("DecryptionFailure", "Other"),
        ];
        for (code, want) in cases {
            let err = Fault::item(code, "words").at("/a/B");
            let got = match &err {
                StoreError::Auth { .. } => "Auth",
                StoreError::Denied { .. } => "Denied",
                StoreError::Unavailable { .. } => "Unavailable",
                StoreError::Other { .. } => "Other",
                _ => "unexpected",
            };
            assert_eq!(got, want, "{code}");
            assert!(err.to_string().contains("/a/B"), "{err}");
            assert!(err.to_string().contains(code), "{err}");
        }
    }

    #[test]
    fn echoed_values_are_blanked() {
        let fault = Fault::item(
            "ValidationException",
            "Value 'hunter22' at 'value' is too long",
        );
        let msg = fault.without("hunter22").at("/a/B").to_string();
        assert!(!msg.contains("hunter22"), "{msg}");
        assert!(msg.contains("***"), "{msg}");
    }
}
