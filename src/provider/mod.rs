//! The `atmos` provider: schemas and Terraform semantics for its data sources, ephemeral
//! resources and resources, on top of the resolution and store layers. Knows no SDK and no gRPC.
//!
//! - [`config`]: the `provider "atmos"` block and the per-process [`config::Session`] (the loaded
//!   workspace and opened stores, built once and shared by concurrent calls).
//! - [`secret`]: `atmos_secret`, as a data source and as an ephemeral resource (one code path).
//! - [`secret_value`]: `atmos_secret_value`, the resource that writes a value.
//! - [`secrets`]: `atmos_secrets`, every declared secret of a stack at once.
//! - [`backends`]: which store instance serves a resolved secret.

pub mod backends;
pub mod config;
pub mod secret;
pub mod secret_value;
pub mod secrets;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::RwLock;

use crate::protocol::diag::Diagnostics;
use crate::protocol::service::{
    ApplyRequest, ApplyResponse, ClientCapabilities, ImportRequest, ImportResponse, OpenResponse,
    PlanRequest, PlanResponse, ProviderService, ReadRequest, ReadResourceRequest,
    ReadResourceResponse, ReadResponse, Schemas,
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
        schemas.data_sources.insert(
            secret::TYPE_NAME.to_owned(),
            secret::schema(secret::Kind::DataSource),
        );
        schemas
            .data_sources
            .insert(secrets::TYPE_NAME.to_owned(), secrets::schema());
        schemas
            .resources
            .insert(secret_value::TYPE_NAME.to_owned(), secret_value::schema());
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
            Ok((session, warnings)) => {
                *self.session.write().await = Some(Arc::new(session));
                warnings
            }
            Err(d) => d,
        }
    }

    async fn validate_data_source_config(&self, type_name: &str, config: Value) -> Diagnostics {
        match type_name {
            secrets::TYPE_NAME => secrets::validate(&config),
            _ => secret::validate(&config),
        }
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
        match req.type_name.as_str() {
            secrets::TYPE_NAME => secrets::read(&session, &req.config, req.capabilities).await,
            _ => secret::read(&session, &req.config, req.capabilities).await,
        }
    }

    async fn validate_resource_config(
        &self,
        _type_name: &str,
        config: Value,
        _capabilities: ClientCapabilities,
    ) -> Diagnostics {
        secret_value::validate(&config)
    }

    async fn plan_resource_change(&self, req: PlanRequest) -> PlanResponse {
        match self.session().await {
            Ok(session) => secret_value::plan(&session, req).await,
            Err(diagnostics) => PlanResponse {
                diagnostics,
                ..PlanResponse::default()
            },
        }
    }

    async fn apply_resource_change(&self, req: ApplyRequest) -> ApplyResponse {
        match self.session().await {
            Ok(session) => secret_value::apply(&session, req).await,
            Err(diagnostics) => ApplyResponse {
                diagnostics,
                ..ApplyResponse::default()
            },
        }
    }

    async fn read_resource(&self, req: ReadResourceRequest) -> ReadResourceResponse {
        match self.session().await {
            Ok(session) => secret_value::read(&session, req).await,
            Err(diagnostics) => ReadResourceResponse {
                diagnostics,
                ..ReadResourceResponse::default()
            },
        }
    }

    async fn import_resource_state(&self, req: ImportRequest) -> ImportResponse {
        match self.session().await {
            Ok(session) => secret_value::import(&session, req).await,
            Err(diagnostics) => ImportResponse {
                diagnostics,
                ..ImportResponse::default()
            },
        }
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

/// A known string attribute of an object value.
pub(crate) fn string_attr(value: &Value, name: &str) -> Option<String> {
    value.attr(name).and_then(Value::as_str).map(str::to_owned)
}
