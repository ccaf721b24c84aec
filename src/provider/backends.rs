//! Which store instance serves a resolved secret. Stores are opened on first use (a SOPS key
//! file is read once, a cloud client built once) and wrapped in the single-flight read cache, so
//! each location is read at most once per provider process.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::resolve::{Backend, ResolvedSecret};
use crate::store::cache::CachedStore;
use crate::store::sops::SopsStore;
use crate::store::{SecretStore, StoreError};

/// Opened stores. A SOPS provider may be redefined per stack or component, so SOPS stores are
/// keyed by what opens them (key file and recipients), not by provider name.
#[derive(Default)]
pub struct Backends {
    open: Mutex<HashMap<String, Arc<CachedStore>>>,
}

impl Backends {
    /// None opened yet.
    pub fn new() -> Self {
        Backends::default()
    }

    /// The store for a resolved secret, opening it on first use.
    pub async fn get(&self, secret: &ResolvedSecret) -> Result<Arc<CachedStore>, StoreError> {
        let key = store_key(secret);
        let mut open = self.open.lock().await;
        if let Some(store) = open.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(CachedStore::new(open_store(secret)?));
        open.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

fn store_key(secret: &ResolvedSecret) -> String {
    match (&secret.backend, &secret.sops) {
        (Backend::Sops { .. }, Some(spec)) => format!(
            "sops\0{}\0{}",
            spec.age_key_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            spec.age_recipients.join(",")
        ),
        (backend, _) => format!("store\0{}", backend.name()),
    }
}

fn open_store(secret: &ResolvedSecret) -> Result<Arc<dyn SecretStore>, StoreError> {
    match &secret.backend {
        Backend::Sops { provider } => {
            let spec = secret.sops.as_ref().ok_or_else(|| {
                StoreError::Config(format!(
                    "no SOPS provider named {provider:?} in effect here"
                ))
            })?;
            let store = SopsStore::open(spec.age_key_file.as_deref(), &spec.age_recipients)?;
            Ok(Arc::new(store))
        }
        Backend::Store { name, kind } => Err(StoreError::Config(format!(
            "store {name:?} is of kind {}, which this build of the provider cannot reach yet",
            kind.as_str()
        ))),
    }
}
