//! AWS Secrets Manager (`aws/asm`, legacy `aws-secrets-manager`).
//!
//! Values are JSON ([`json_encode`]), read as JSON with a fallback to the raw string. A write
//! puts a new version (CreateSecret the first time); the version id is the `VersionId`. Reads take
//! the `AWSCURRENT` stage; batched reads use BatchGetSecretValue, twenty ids per call. A secret
//! scheduled for deletion reads as missing, and writing it again restores it.
//!
//! Options: `region`, `endpoint` / `endpoint_url`, `kms_key_id` (for new secrets),
//! `recovery_window_in_days` (7 to 30, default 30; 0 deletes at once), `read_role_arn`,
//! `write_role_arn`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::SecretValueEntry;
use zeroize::Zeroizing;

use super::aws::{self, Fault};
use super::encoding::{json_decode, json_encode};
use super::{Location, SecretStore, StoreError, StoreSettings, Versioned};
use crate::sensitive::SecretValue;

/// BatchGetSecretValue takes at most this many ids in `SecretIdList`.
const BATCH: usize = 20;
/// Batches in flight at once.
const PARALLEL_BATCHES: usize = 4;
/// Atmos's and AWS's default recovery window.
const DEFAULT_RECOVERY_DAYS: i64 = 30;

/// Words of the InvalidRequestException for a secret scheduled for deletion (AWS says "marked
/// for deletion" or, on CreateSecret, "scheduled for deletion"; moto says "marked deleted").
const MARKED_FOR_DELETION: [&str; 3] = [
    "marked for deletion",
    "scheduled for deletion",
    "marked deleted",
];

fn pending_deletion(message: &str) -> bool {
    MARKED_FOR_DELETION.iter().any(|m| message.contains(m))
}

/// The Secrets Manager backend.
pub struct AsmStore {
    read: Client,
    write: Client,
    kms_key_id: Option<String>,
    recovery_days: i64,
}

impl AsmStore {
    /// Builds the clients from the store's options and the standard credential chain.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let recovery_days = match settings.options.get("recovery_window_in_days") {
            None | Some(serde_json::Value::Null) => DEFAULT_RECOVERY_DAYS,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(d) if d == 0 || (7..=30).contains(&d) => d,
                _ => {
                    return Err(StoreError::Config(format!(
                        "store {:?}: option `recovery_window_in_days` must be 0 (delete at once) \
                         or a number of days from 7 to 30",
                        settings.name
                    )));
                }
            },
        };
        let configs = aws::load(settings).await?;
        Ok(AsmStore {
            read: Client::new(&configs.read),
            write: Client::new(&configs.write),
            kms_key_id: settings.string("kms_key_id")?.filter(|k| !k.is_empty()),
            recovery_days,
        })
    }

    /// One BatchGetSecretValue call; results keyed by the id asked for.
    async fn batch(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Result<Option<Versioned>, Fault>>, Fault> {
        let out = self
            .read
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| Fault::of(&e))?;
        let mut found = HashMap::new();
        for entry in out.secret_values() {
            for key in [entry.name(), entry.arn()].into_iter().flatten() {
                found.insert(key.to_owned(), Ok(versioned(entry)));
            }
        }
        for error in out.errors() {
            let Some(id) = error.secret_id() else {
                continue;
            };
            let code = error.error_code().unwrap_or_default();
            let message = error.message().unwrap_or_default();
            let result = if code == "ResourceNotFoundException" || pending_deletion(message) {
                Ok(None)
            } else {
                Err(Fault::item(code, message))
            };
            found.insert(id.to_owned(), result);
        }
        Ok(found)
    }

    /// CreateSecret; PutSecretValue when the secret exists; RestoreSecret first when it is
    /// scheduled for deletion (AWS refuses new versions of such a secret).
    async fn put(&self, name: &str, encoded: &str) -> Result<String, Fault> {
        let created = self
            .write
            .create_secret()
            .name(name)
            .secret_string(encoded)
            .set_kms_key_id(self.kms_key_id.clone())
            .send()
            .await;
        let fault = match created {
            Ok(out) => return Ok(out.version_id().unwrap_or_default().to_owned()),
            Err(e) => Fault::of(&e),
        };
        if fault.is(pending_deletion) {
            self.write
                .restore_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| Fault::of(&e))?;
        } else if !fault.is(|m| m.starts_with("ResourceExistsException")) {
            return Err(fault);
        }
        let out = self
            .write
            .put_secret_value()
            .secret_id(name)
            .secret_string(encoded)
            .send()
            .await
            .map_err(|e| Fault::of(&e))?;
        Ok(out.version_id().unwrap_or_default().to_owned())
    }
}

fn name(location: &Location) -> Result<&str, StoreError> {
    location.native_name("aws/asm")
}

fn versioned(entry: &SecretValueEntry) -> Option<Versioned> {
    let value = match (entry.secret_string(), entry.secret_binary()) {
        (Some(s), _) => json_decode(s),
        (None, Some(b)) => json_decode(&Zeroizing::new(
            String::from_utf8_lossy(b.as_ref()).into_owned(),
        )),
        (None, None) => return None,
    };
    Some(Versioned {
        value,
        version: entry.version_id().map(str::to_owned),
    })
}

/// Whether a service error says "no such secret" or "scheduled for deletion": a missing value.
fn is_missing(fault: &Fault, not_found: bool) -> bool {
    not_found || fault.is(pending_deletion)
}

#[async_trait]
impl SecretStore for AsmStore {
    fn kind(&self) -> &'static str {
        "aws/asm"
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let name = name(location)?;
        let result = self
            .read
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await;
        match result {
            Ok(out) => Ok(versioned(
                &SecretValueEntry::builder()
                    .set_secret_string(out.secret_string().map(str::to_owned))
                    .set_secret_binary(out.secret_binary().cloned())
                    .set_version_id(out.version_id().map(str::to_owned))
                    .build(),
            )),
            Err(e) => {
                let not_found = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception());
                let fault = Fault::of(&e);
                if is_missing(&fault, not_found) {
                    Ok(None)
                } else {
                    Err(fault.at(name))
                }
            }
        }
    }

    fn batches(&self) -> bool {
        true
    }

    async fn read_many(
        &self,
        locations: &[Location],
    ) -> Vec<Result<Option<Versioned>, StoreError>> {
        let mut ids: Vec<String> = locations
            .iter()
            .filter_map(|l| name(l).ok().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        let found = aws::in_batches(&ids, BATCH, PARALLEL_BATCHES, |chunk| async move {
            self.batch(&chunk).await
        })
        .await;
        locations
            .iter()
            .map(|l| {
                let name = name(l)?;
                match found.get(name) {
                    Some(Ok(v)) => Ok(v.clone()),
                    Some(Err(fault)) => Err(fault.at(name)),
                    None => Ok(None),
                }
            })
            .collect()
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let name = name(location)?;
        let encoded = Zeroizing::new(json_encode(value));
        self.put(name, &encoded)
            .await
            .map_err(|fault| fault.without(&encoded).without(value.expose()).at(name))
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let name = name(location)?;
        let mut call = self.write.delete_secret().secret_id(name);
        call = if self.recovery_days == 0 {
            call.force_delete_without_recovery(true)
        } else {
            call.recovery_window_in_days(self.recovery_days)
        };
        match call.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let not_found = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception());
                let fault = Fault::of(&e);
                // Already scheduled for deletion counts as deleted.
                if is_missing(&fault, not_found) {
                    Ok(())
                } else {
                    Err(fault.at(name))
                }
            }
        }
    }

    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        // DescribeSecret: no decryption, and the value never reaches us.
        let name = name(location)?;
        match self.read.describe_secret().secret_id(name).send().await {
            Ok(out) => Ok(out.deleted_date().is_none()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Fault::of(&e).at(name)),
        }
    }
}
