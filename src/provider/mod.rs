//! The `atmos` provider: schemas and Terraform semantics for its data sources, ephemeral
//! resources and resources, on top of the resolution and store layers. Knows no SDK and no gRPC.
//!
//! - [`config`]: the `provider "atmos"` block and the per-process [`config::Session`] (the loaded
//!   workspace and opened stores, built once and shared by concurrent calls).
//! - [`secret`]: `atmos_secret`, as a data source and as an ephemeral resource (one code path).
//! - [`backends`]: which store instance serves a resolved secret.

pub mod backends;
pub mod config;
pub mod secret;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::RwLock;

use crate::protocol::diag::Diagnostics;
use crate::protocol::service::{
    ClientCapabilities, OpenResponse, ProviderService, ReadRequest, ReadResponse, Schemas,
};
use crate::protocol::value::Value;

use config::Session;

/// The provider.
pub struct AtmosProvider {
    schemas: Schemas,
    session: RwLock<Option<Arc<Session>>>,
}

impl Default for AtmosProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl AtmosProvider {
    /// A provider, not yet configured.
    pub fn new() -> Self {
        let mut schemas = Schemas {
            provider: config::schema(),
            ..Schemas::default()
        };
        schemas
            .data_sources
            .insert(secret::TYPE_NAME.to_owned(), secret::schema(secret::Kind::DataSource));
        schemas.ephemeral_resources.insert(
            secret::TYPE_NAME.to_owned(),
            secret::schema(secret::Kind::Ephemeral),
        );
        AtmosProvider {
            schemas,
            session: RwLock::new(None),
        }
    }

    async fn session(&self) -> Result<Arc<Session>, Diagnostics> {
        match self.session.read().await.as_ref() {
            Some(s) => Ok(Arc::clone(s)),
            None => {
                let mut d = Diagnostics::new();
                d.error(
                    "Provider not configured",
                    "The atmos provider was used before it was configured. This is a bug in \
                     OpenTofu or in the provider.",
                );
                Err(d)
            }
        }
    }
}

#[async_trait]
impl ProviderService for AtmosProvider {
    fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    async fn validate_provider_config(&self, config: Value) -> Diagnostics {
        config::validate(&config)
    }

    async fn configure(&self, config: Value, _capabilities: ClientCapabilities) -> Diagnostics {
        match Session::open(&config).await {
            Ok(session) => {
                *self.session.write().await = Some(Arc::new(session));
                Diagnostics::new()
            }
            Err(d) => d,
        }
    }

    async fn validate_data_source_config(&self, _type_name: &str, config: Value) -> Diagnostics {
        secret::validate(&config)
    }

    async fn read_data_source(&self, req: ReadRequest) -> ReadResponse {
        let session = match self.session().await {
            Ok(s) => s,
            Err(diagnostics) => {
                return ReadResponse {
                    diagnostics,
                    ..ReadResponse::default()
                };
            }
        };
        secret::read(&session, &req.config, req.capabilities).await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _type_name: &str,
        config: Value,
    ) -> Diagnostics {
        secret::validate(&config)
    }

    async fn open_ephemeral_resource(&self, req: ReadRequest) -> OpenResponse {
        let session = match self.session().await {
            Ok(s) => s,
            Err(diagnostics) => {
                return OpenResponse {
                    diagnostics,
                    ..OpenResponse::default()
                };
            }
        };
        let read = secret::read(&session, &req.config, req.capabilities).await;
        OpenResponse {
            result: read.state,
            diagnostics: read.diagnostics,
            deferred: read.deferred,
            private: None,
            renew_at: None,
        }
    }
}
