//! Which store instance serves a resolved secret. Stores are opened on first use (a SOPS key
//! file is read once, a cloud client built once) and wrapped in the single-flight read cache, so
//! each location is read at most once per provider process.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::resolve::{Backend, ResolvedSecret, StoreConfig, Workspace};
use crate::store::cache::CachedStore;
use crate::store::sops::SopsStore;
use crate::store::{SecretStore, StoreError, StoreSettings, registry};

/// Opened stores. A SOPS provider may be redefined per stack or component, so SOPS stores are
/// keyed by what opens them (key file and recipients), not by provider name.
#[derive(Default)]
pub struct Backends {
    open: Mutex<HashMap<String, Arc<CachedStore>>>,
    /// (store, stack, component) whose declared secrets were fetched in one batch.
    prefetched: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
}

impl Backends {
    /// None opened yet.
    pub fn new() -> Self {
        Backends::default()
    }

    /// The store for a resolved secret, opening it on first use.
    pub async fn get(
        &self,
        workspace: &Workspace,
        secret: &ResolvedSecret,
    ) -> Result<Arc<CachedStore>, StoreError> {
        let key = store_key(secret);
        let mut open = self.open.lock().await;
        if let Some(store) = open.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(CachedStore::new(open_store(workspace, secret).await?));
        open.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

impl Backends {
    /// Reads, in one batched call, every secret declared for `secret`'s stack (and component)
    /// that lives in the same store, so that the single reads OpenTofu makes for many
    /// `atmos_secret` blocks hit the cache instead of the backend (100 SSM reads: 10 calls, not
    /// 100). Once per (store, stack, component) per process, and only for stores with a batched
    /// read; a failed batch is ignored (each single read then reports its own error).
    pub async fn prefetch_neighbours(
        &self,
        workspace: &Workspace,
        secret: &ResolvedSecret,
        store: &CachedStore,
    ) {
        if !store.batches() {
            return;
        }
        let key = store_key(secret);
        let cell = {
            let mut prefetched = self.prefetched.lock().await;
            let slot = format!(
                "{key}\0{}\0{}",
                secret.stack,
                secret.component.as_deref().unwrap_or("")
            );
            Arc::clone(prefetched.entry(slot).or_default())
        };
        cell.get_or_init(|| async {
            let Ok(declared) = workspace.declared(&secret.stack, secret.component.as_deref())
            else {
                return;
            };
            let locations: Vec<_> = declared
                .iter()
                .filter(|d| store_key(d) == key)
                .map(|d| d.location.clone())
                .collect();
            if locations.len() > 1 {
                let _ = store.read_many(&locations).await;
            }
        })
        .await;
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

async fn open_store(
    workspace: &Workspace,
    secret: &ResolvedSecret,
) -> Result<Arc<dyn SecretStore>, StoreError> {
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
        Backend::Store { name, kind } => {
            let config = workspace
                .store(name)
                .ok_or_else(|| StoreError::Config(format!("no store named {name:?}")))?;
            registry::open(kind.as_str(), &settings(config)).await
        }
    }
}

/// The store's settings in plain JSON types, for the store layer.
fn settings(config: &StoreConfig) -> StoreSettings {
    let options = match serde_json::to_value(&config.options) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    StoreSettings {
        name: config.name.clone(),
        options,
        identity: config.identity.clone(),
    }
}
