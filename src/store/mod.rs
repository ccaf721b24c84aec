//! Secret backends: one trait, one module per backend.
//!
//! A store receives a [`Location`] that the resolution layer has already computed from a
//! declaration and its scope (the naming rules are configuration, checked for collisions and
//! escapes when the configuration is loaded). A store only does I/O: it never sees Terraform
//! types, and secret material only travels as [`SecretValue`].

pub mod asm;
pub mod aws;
pub mod azure;
pub mod cache;
pub mod encoding;
pub mod gcp;
pub mod registry;
pub mod sops;
pub mod ssm;
pub mod vault;

use std::path::PathBuf;

use async_trait::async_trait;

use crate::sensitive::SecretValue;

/// A store's settings from `atmos.yaml` (`options`, `identity`), in plain JSON types so that no
/// configuration format leaks into the backends.
#[derive(Clone, Debug, Default)]
pub struct StoreSettings {
    /// The store's name in `atmos.yaml`.
    pub name: String,
    /// `options`.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// `identity`.
    pub identity: Option<String>,
}

impl StoreSettings {
    /// A string option; a non-string value is a configuration error naming the option.
    pub fn string(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self.options.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(serde_json::Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(StoreError::Config(format!(
                "store {:?}: option `{key}` must be a string",
                self.name
            ))),
        }
    }

    /// A list-of-strings option (a single string counts as a list of one).
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, StoreError> {
        match self.options.get(key) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        StoreError::Config(format!(
                            "store {:?}: option `{key}` must be a list of strings",
                            self.name
                        ))
                    })
                })
                .collect(),
            Some(_) => Err(StoreError::Config(format!(
                "store {:?}: option `{key}` must be a list of strings",
                self.name
            ))),
        }
    }
}

/// Where one value lives in one backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A native name: an SSM parameter path, a Secrets Manager / GCP / Azure secret name, a Vault
    /// KV path under the store's mount.
    Named(String),
    /// A top-level key of a SOPS-encrypted YAML file.
    SopsKey {
        /// The encrypted file.
        file: PathBuf,
        /// The top-level key in it.
        key: String,
    },
}

impl Location {
    /// The native name, for the stores addressed by name (`kind` says which, for the error); a
    /// SOPS file location given to such a store is a configuration error.
    pub fn native_name(&self, kind: &str) -> Result<&str, StoreError> {
        match self {
            Location::Named(name) => Ok(name),
            other => Err(StoreError::Config(format!(
                "{kind} cannot address {other}: it takes a native name"
            ))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Named(name) => f.write_str(name),
            Location::SopsKey { file, key } => write!(f, "{} (key {key})", file.display()),
        }
    }
}

/// A value with the backend's version id.
#[derive(Clone, Debug)]
pub struct Versioned {
    /// The value, as Atmos reads it (objects and lists as JSON text).
    pub value: SecretValue,
    /// The backend's own version id (never derived from the value without a salt).
    pub version: Option<String>,
}

/// Why a backend call failed. Messages name the location, never the value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Credentials missing or rejected.
    #[error("authentication failed for {location}: {message}")]
    Auth {
        /// Where.
        location: String,
        /// The backend's words.
        message: String,
    },
    /// Authenticated, but not allowed.
    #[error("access denied to {location}: {message}")]
    Denied {
        /// Where.
        location: String,
        /// The backend's words.
        message: String,
    },
    /// Data is present but fails an integrity check (SOPS MAC, tampered ciphertext).
    #[error("integrity check failed for {location}: {message}")]
    Integrity {
        /// Where.
        location: String,
        /// What failed.
        message: String,
    },
    /// The store's configuration is wrong (missing key file, bad option).
    #[error("store configuration: {0}")]
    Config(String),
    /// The backend could not be reached or kept failing within the retry budget.
    #[error("backend unavailable for {location}: {message}")]
    Unavailable {
        /// Where.
        location: String,
        /// What happened.
        message: String,
    },
    /// Anything else the backend said.
    #[error("{location}: {message}")]
    Other {
        /// Where.
        location: String,
        /// What happened.
        message: String,
    },
}

/// One secret backend.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The store's kind, as in `atmos.yaml` (`sops/age`, `aws/ssm`, ...).
    fn kind(&self) -> &'static str;

    /// Reads one value; `None` when nothing is stored there.
    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError>;

    /// Whether [`SecretStore::read_many`] is cheaper than one read per location (a batched API).
    /// Callers use it to fetch the neighbours of a value in one call.
    fn batches(&self) -> bool {
        false
    }

    /// Reads many values, batched where the backend allows. One result per location, in order.
    async fn read_many(
        &self,
        locations: &[Location],
    ) -> Vec<Result<Option<Versioned>, StoreError>> {
        let mut out = Vec::with_capacity(locations.len());
        for location in locations {
            out.push(self.read(location).await);
        }
        out
    }

    /// Writes a value and returns the backend's version id for it.
    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError>;

    /// Removes a value (with the backend's own delete semantics). Removing nothing is not an error.
    async fn delete(&self, location: &Location) -> Result<(), StoreError>;

    /// Whether a value is stored, without fetching or decrypting it where the backend allows.
    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        Ok(self.read(location).await?.is_some())
    }
}
