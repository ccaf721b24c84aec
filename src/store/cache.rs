//! A read cache in front of any store: one backend read per location per process, shared by
//! concurrent readers (single flight). OpenTofu reads data sources in parallel, and many of them
//! often name the same secret, so this is where the call count for a plan is decided.
//!
//! Failed reads are not cached: the next reader tries again. Writes and deletes through the cache
//! update it, so a read after our own write sees the new value without a backend call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{Location, SecretStore, StoreError, Versioned};
use crate::sensitive::SecretValue;

type Slot = Arc<OnceCell<Option<Versioned>>>;

/// A caching, single-flight wrapper around a store.
pub struct CachedStore {
    inner: Arc<dyn SecretStore>,
    slots: Mutex<HashMap<Location, Slot>>,
}

impl CachedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SecretStore>) -> Self {
        CachedStore {
            inner,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, location: &Location) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(slots.entry(location.clone()).or_default())
    }

    fn set(&self, location: &Location, value: Option<Versioned>) {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.insert(location.clone(), Arc::new(OnceCell::new_with(Some(value))));
    }
}

#[async_trait]
impl SecretStore for CachedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn batches(&self) -> bool {
        self.inner.batches()
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let slot = self.slot(location);
        slot.get_or_try_init(|| self.inner.read(location))
            .await
            .cloned()
    }

    async fn read_many(
        &self,
        locations: &[Location],
    ) -> Vec<Result<Option<Versioned>, StoreError>> {
        // Serve what is cached; fetch the rest in one batched call.
        let mut out: Vec<Option<Result<Option<Versioned>, StoreError>>> =
            Vec::with_capacity(locations.len());
        let mut missing = Vec::new();
        for (i, location) in locations.iter().enumerate() {
            match self.slot(location).get() {
                Some(v) => out.push(Some(Ok(v.clone()))),
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        if !missing.is_empty() {
            let wanted: Vec<Location> = missing.iter().map(|&i| locations[i].clone()).collect();
            let fetched = self.inner.read_many(&wanted).await;
            for (&i, result) in missing.iter().zip(fetched) {
                if let Ok(v) = &result {
                    let _ = self.slot(&locations[i]).set(v.clone());
                }
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Config(
                        "internal: batched read returned fewer results than asked".into(),
                    ))
                })
            })
            .collect()
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let version = self.inner.write(location, value).await?;
        self.set(
            location,
            Some(Versioned {
                value: value.clone(),
                version: Some(version.clone()),
            }),
        );
        Ok(version)
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        self.inner.delete(location).await?;
        self.set(location, None);
        Ok(())
    }

    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        match self.slot(location).get() {
            Some(v) => Ok(v.is_some()),
            None => self.inner.exists(location).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts reads; answers after a short pause so concurrent readers overlap.
    struct Counting {
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SecretStore for Counting {
        fn kind(&self) -> &'static str {
            "test/counting"
        }
        async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(Some(Versioned {
                value: SecretValue::new(format!("v-{location}")),
                version: Some("1".into()),
            }))
        }
        async fn write(&self, _: &Location, _: &SecretValue) -> Result<String, StoreError> {
            Ok("2".into())
        }
        async fn delete(&self, _: &Location) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_of_one_location_hit_the_backend_once() {
        let inner = Arc::new(Counting {
            reads: AtomicUsize::new(0),
        });
        let cache = Arc::new(CachedStore::new(inner.clone()));
        let loc = Location::Named("/prod/DB".into());
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let cache = Arc::clone(&cache);
            let loc = loc.clone();
            tasks.push(tokio::spawn(async move { cache.read(&loc).await }));
        }
        for t in tasks {
            let v = t.await.expect("join").expect("read").expect("some");
            assert_eq!(v.value.expose(), "v-/prod/DB");
        }
        assert_eq!(inner.reads.load(Ordering::SeqCst), 1);
        // A different location is a different read.
        cache
            .read(&Location::Named("/prod/OTHER".into()))
            .await
            .expect("read");
        assert_eq!(inner.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn writes_and_deletes_update_the_cache() {
        let inner = Arc::new(Counting {
            reads: AtomicUsize::new(0),
        });
        let cache = CachedStore::new(inner.clone());
        let loc = Location::Named("k".into());
        cache
            .write(&loc, &SecretValue::new("new".into()))
            .await
            .expect("write");
        let v = cache.read(&loc).await.expect("read").expect("some");
        assert_eq!(v.value.expose(), "new");
        assert_eq!(v.version.as_deref(), Some("2"));
        cache.delete(&loc).await.expect("delete");
        assert!(cache.read(&loc).await.expect("read").is_none());
        assert!(!cache.exists(&loc).await.expect("exists"));
        assert_eq!(inner.reads.load(Ordering::SeqCst), 0);
    }
}
