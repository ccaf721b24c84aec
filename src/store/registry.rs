//! Opens a store by its `kind` (or legacy `type`) from `atmos.yaml`. Adding a backend is one new
//! file and one arm here.

use std::sync::Arc;

use super::{SecretStore, StoreError, StoreSettings, asm, ssm};

/// Opens the store of `kind` (canonical or legacy spelling) with its settings.
pub async fn open(
    kind: &str,
    settings: &StoreSettings,
) -> Result<Arc<dyn SecretStore>, StoreError> {
    match kind {
        "hashicorp/vault" | "hashicorp-vault" => super::vault::open(settings).await,
        "azure/keyvault" | "azure-key-vault" => {
            Ok(Arc::new(super::azure::AzureKeyVault::open(settings)?))
        }
        "gcp/secretmanager" | "google-secret-manager" | "gsm" => {
            Ok(Arc::new(super::gcp::GcpSecretManager::open(settings)?))
        }
        "aws/ssm" | "aws-ssm-parameter-store" => Ok(Arc::new(ssm::SsmStore::open(settings).await?)),
        "aws/asm" | "aws-secrets-manager" => Ok(Arc::new(asm::AsmStore::open(settings).await?)),
        _ => Err(StoreError::Config(format!(
            "store {:?}: kind {kind:?} is not supported by this build of the provider",
            settings.name
        ))),
    }
}
