//! Which store instance serves a resolved secret. Stores are opened on first use (a SOPS key
//! file is read once, a cloud client built once) and wrapped in the single-flight read cache, so
//! each location is read at most once per provider process.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::resolve::{Backend, Workspace};
use crate::store::cache::CachedStore;
use crate::store::sops::SopsStore;
use crate::store::{SecretStore, StoreError};

/// Opened stores, by backend.
#[derive(Default)]
pub struct Backends {
    open: Mutex<HashMap<Backend, Arc<CachedStore>>>,
}

impl Backends {
    /// None opened yet.
    pub fn new() -> Self {
        Backends::default()
    }

    /// The store for `backend`, opening it on first use.
    pub async fn get(
        &self,
        workspace: &Workspace,
        backend: &Backend,
    ) -> Result<Arc<CachedStore>, StoreError> {
        let mut open = self.open.lock().await;
        if let Some(store) = open.get(backend) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(CachedStore::new(open_store(workspace, backend)?));
        open.insert(backend.clone(), Arc::clone(&store));
        Ok(store)
    }
}

fn open_store(workspace: &Workspace, backend: &Backend) -> Result<Arc<dyn SecretStore>, StoreError> {
    match backend {
        Backend::Sops { provider } => {
            let spec = workspace.sops_provider(provider).ok_or_else(|| {
                StoreError::Config(format!("no SOPS provider named {provider:?}"))
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
