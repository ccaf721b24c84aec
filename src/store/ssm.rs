//! AWS SSM Parameter Store (`aws/ssm`, legacy `aws-ssm-parameter-store`).
//!
//! Values are `SecureString` parameters, encoded as Atmos does ([`ssm_encode`]); the version id
//! is the parameter's `Version`. A name may carry SSM's own selector (`/a/B:3`, `/a/B:label`) to
//! read a given version or label. Batched reads use GetParameters, ten names per call (the API's
//! limit); names it reports as invalid are missing values.
//!
//! Options: `region`, `endpoint` / `endpoint_url`, `kms_key_id`, `tier` (`Standard`, `Advanced`,
//! `Intelligent-Tiering`), `read_role_arn`, `write_role_arn`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{Parameter, ParameterTier, ParameterType};
use zeroize::Zeroizing;

use super::aws::{self, Fault};
use super::encoding::{ssm_decode, ssm_encode};
use super::{Location, SecretStore, StoreError, StoreSettings, Versioned};
use crate::sensitive::SecretValue;

/// GetParameters takes at most this many names.
const BATCH: usize = 10;
/// Batches in flight at once.
const PARALLEL_BATCHES: usize = 4;

/// The SSM Parameter Store backend.
pub struct SsmStore {
    read: Client,
    write: Client,
    kms_key_id: Option<String>,
    tier: Option<ParameterTier>,
}

impl SsmStore {
    /// Builds the clients from the store's options and the standard credential chain.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let tier = match settings.string("tier")?.as_deref() {
            None | Some("") => None,
            Some(t @ ("Standard" | "Advanced" | "Intelligent-Tiering")) => {
                Some(ParameterTier::from(t))
            }
            Some(other) => {
                return Err(StoreError::Config(format!(
                    "store {:?}: option `tier` is {other:?}; expected Standard, Advanced or \
                     Intelligent-Tiering",
                    settings.name
                )));
            }
        };
        let configs = aws::load(settings).await?;
        Ok(SsmStore {
            read: Client::new(&configs.read),
            write: Client::new(&configs.write),
            kms_key_id: settings.string("kms_key_id")?.filter(|k| !k.is_empty()),
            tier,
        })
    }

    /// One GetParameters call; results keyed by name.
    async fn batch(&self, names: &[String]) -> Result<HashMap<String, Versioned>, Fault> {
        let out = self
            .read
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| Fault::of(&e))?;
        // Names in `invalid_parameters` are simply absent from the map. A name asked for with a
        // version or label selector (`name:3`, `name:prod`) comes back as name plus selector.
        Ok(out
            .parameters()
            .iter()
            .filter_map(|p| {
                let key = format!("{}{}", p.name()?, p.selector().unwrap_or_default());
                Some((key, versioned(p)?))
            })
            .collect())
    }
}

fn name(location: &Location) -> Result<&str, StoreError> {
    location.native_name("aws/ssm")
}

fn versioned(p: &Parameter) -> Option<Versioned> {
    Some(Versioned {
        value: ssm_decode(p.value()?),
        version: Some(p.version().to_string()),
    })
}

#[async_trait]
impl SecretStore for SsmStore {
    fn kind(&self) -> &'static str {
        "aws/ssm"
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let name = name(location)?;
        match self
            .read
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().and_then(versioned)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Fault::of(&e).at(name)),
        }
    }

    fn batches(&self) -> bool {
        true
    }

    async fn read_many(
        &self,
        locations: &[Location],
    ) -> Vec<Result<Option<Versioned>, StoreError>> {
        let mut names: Vec<String> = locations
            .iter()
            .filter_map(|l| name(l).ok().map(str::to_owned))
            // A selector (`name:3`) or an ARN is read alone: GetParameters answers with the
            // bare name, which would not tell two versions of one parameter apart.
            .filter(|n| !n.contains(':'))
            .collect();
        names.sort();
        names.dedup();
        let found = aws::in_batches(&names, BATCH, PARALLEL_BATCHES, |chunk| async move {
            let values = self.batch(&chunk).await?;
            Ok(values.into_iter().map(|(n, v)| (n, Ok(Some(v)))).collect())
        })
        .await;
        let mut out = Vec::with_capacity(locations.len());
        for location in locations {
            out.push(match name(location) {
                Err(e) => Err(e),
                Ok(n) => match found.get(n) {
                    Some(Ok(v)) => Ok(v.clone()),
                    Some(Err(fault)) => Err(fault.at(n)),
                    None => self.read(location).await,
                },
            });
        }
        out
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let name = name(location)?;
        let encoded = Zeroizing::new(ssm_encode(value));
        let out = self
            .write
            .put_parameter()
            .name(name)
            .value(encoded.as_str())
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .set_key_id(self.kms_key_id.clone())
            .set_tier(self.tier.clone())
            .send()
            .await
            .map_err(|e| Fault::of(&e).without(&encoded).at(name))?;
        Ok(out.version().to_string())
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let name = name(location)?;
        match self.write.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(Fault::of(&e).at(name)),
        }
    }

    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        // Without decryption: no KMS call, and the plain value never reaches us.
        let name = name(location)?;
        match self
            .read
            .get_parameter()
            .name(name)
            .with_decryption(false)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().is_some()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Fault::of(&e).at(name)),
        }
    }
}
