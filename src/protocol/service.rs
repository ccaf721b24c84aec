//! The interface a provider implements, in protocol terms but free of gRPC: schemas, decoded
//! [`Value`]s and [`Diagnostics`]. The server adapter decodes every request against the schema
//! before calling in, and encodes every answer (and nulls write-only attributes) on the way out.
//!
//! Every method but [`ProviderService::schemas`] has a default, so a provider implements only the
//! capabilities it has; a request for a type it does not declare never reaches it.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::diag::Diagnostics;
use super::schema::Schema;
use super::value::Value;

/// All schemas a provider declares.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    /// The `provider` block.
    pub provider: Schema,
    /// Managed resources by type name.
    pub resources: BTreeMap<String, Schema>,
    /// Data sources by type name.
    pub data_sources: BTreeMap<String, Schema>,
    /// Ephemeral resources by type name.
    pub ephemeral_resources: BTreeMap<String, Schema>,
}

/// What the client says it can handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    /// The client accepts deferred answers.
    pub deferral_allowed: bool,
    /// The client understands write-only attributes.
    pub write_only_attributes_allowed: bool,
}

/// Why an answer is deferred to a later round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferred {
    /// The resource's configuration has unknown values.
    ResourceConfigUnknown,
    /// The provider's configuration has unknown values.
    ProviderConfigUnknown,
}

/// A read of a data source or an open of an ephemeral resource.
#[derive(Clone, Debug)]
pub struct ReadRequest {
    /// Type name, e.g. `atmos_secret`.
    pub type_name: String,
    /// The configuration, decoded against the schema.
    pub config: Value,
    /// What the client can handle.
    pub capabilities: ClientCapabilities,
}

/// The answer to a [`ReadRequest`].
#[derive(Clone, Debug, Default)]
pub struct ReadResponse {
    /// The full object (config plus computed attributes); `None` only with errors or deferral.
    pub state: Option<Value>,
    /// Problems.
    pub diagnostics: Diagnostics,
    /// Set when the read is deferred.
    pub deferred: Option<Deferred>,
}

/// A plan for a managed resource.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// Type name.
    pub type_name: String,
    /// The current state; null for a create.
    pub prior_state: Value,
    /// What the client proposes; null for a destroy.
    pub proposed_new_state: Value,
    /// The configuration (write-only attributes are only here).
    pub config: Value,
    /// Provider-private data from the last apply or read.
    pub prior_private: Vec<u8>,
    /// What the client can handle.
    pub capabilities: ClientCapabilities,
}

/// The answer to a [`PlanRequest`].
#[derive(Clone, Debug, Default)]
pub struct PlanResponse {
    /// The planned state; null for a destroy. `None` is taken as "the proposed state".
    pub planned_state: Option<Value>,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<super::diag::AttributePath>,
    /// Provider-private data handed to apply.
    pub planned_private: Vec<u8>,
    /// Problems.
    pub diagnostics: Diagnostics,
    /// Set when the plan is deferred.
    pub deferred: Option<Deferred>,
}

/// An apply for a managed resource.
#[derive(Clone, Debug)]
pub struct ApplyRequest {
    /// Type name.
    pub type_name: String,
    /// The current state; null for a create.
    pub prior_state: Value,
    /// The planned state; null for a destroy.
    pub planned_state: Value,
    /// The configuration.
    pub config: Value,
    /// Private data from the plan.
    pub planned_private: Vec<u8>,
}

/// The answer to an [`ApplyRequest`].
#[derive(Clone, Debug, Default)]
pub struct ApplyResponse {
    /// The new state (null after a destroy). `None` only with errors.
    pub new_state: Option<Value>,
    /// Provider-private data to keep.
    pub private: Vec<u8>,
    /// Problems.
    pub diagnostics: Diagnostics,
}

/// A refresh of a managed resource.
#[derive(Clone, Debug)]
pub struct ReadResourceRequest {
    /// Type name.
    pub type_name: String,
    /// The state to refresh.
    pub current_state: Value,
    /// Private data.
    pub private: Vec<u8>,
    /// What the client can handle.
    pub capabilities: ClientCapabilities,
}

/// The answer to a [`ReadResourceRequest`].
#[derive(Clone, Debug, Default)]
pub struct ReadResourceResponse {
    /// The refreshed state; `Some(Value::Null)` means the object is gone. `None` keeps the current
    /// state (only with errors).
    pub new_state: Option<Value>,
    /// Private data.
    pub private: Vec<u8>,
    /// Problems.
    pub diagnostics: Diagnostics,
    /// Set when deferred.
    pub deferred: Option<Deferred>,
}

/// An import by id.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// Type name.
    pub type_name: String,
    /// The id the user gave.
    pub id: String,
    /// What the client can handle.
    pub capabilities: ClientCapabilities,
}

/// The answer to an [`ImportRequest`].
#[derive(Clone, Debug, Default)]
pub struct ImportResponse {
    /// Imported objects (usually one), each with its private data.
    pub imported: Vec<(Value, Vec<u8>)>,
    /// Problems.
    pub diagnostics: Diagnostics,
}

/// The answer to an open of an ephemeral resource.
#[derive(Clone, Debug, Default)]
pub struct OpenResponse {
    /// The result object.
    pub result: Option<Value>,
    /// Private data for renew and close.
    pub private: Option<Vec<u8>>,
    /// When to renew, if ever.
    pub renew_at: Option<std::time::SystemTime>,
    /// Problems.
    pub diagnostics: Diagnostics,
    /// Set when deferred.
    pub deferred: Option<Deferred>,
}

/// A provider, seen from the protocol.
#[async_trait]
pub trait ProviderService: Send + Sync + 'static {
    /// Every schema. Called often: return a reference to schemas built once.
    fn schemas(&self) -> &Schemas;

    /// Validates the provider block (values may be unknown).
    async fn validate_provider_config(&self, _config: Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Configures the provider (values may be unknown during plan).
    async fn configure(&self, _config: Value, _capabilities: ClientCapabilities) -> Diagnostics {
        Diagnostics::new()
    }

    /// Validates a data source's configuration (values may be unknown).
    async fn validate_data_source_config(&self, _type_name: &str, _config: Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads a data source.
    async fn read_data_source(&self, req: ReadRequest) -> ReadResponse {
        unsupported(&req.type_name)
    }

    /// Validates a resource's configuration (values may be unknown).
    async fn validate_resource_config(
        &self,
        _type_name: &str,
        _config: Value,
        _capabilities: ClientCapabilities,
    ) -> Diagnostics {
        Diagnostics::new()
    }

    /// Plans a change to a managed resource.
    async fn plan_resource_change(&self, req: PlanRequest) -> PlanResponse {
        PlanResponse {
            diagnostics: unsupported(&req.type_name).diagnostics,
            ..PlanResponse::default()
        }
    }

    /// Applies a planned change.
    async fn apply_resource_change(&self, req: ApplyRequest) -> ApplyResponse {
        ApplyResponse {
            diagnostics: unsupported(&req.type_name).diagnostics,
            ..ApplyResponse::default()
        }
    }

    /// Refreshes a managed resource.
    async fn read_resource(&self, req: ReadResourceRequest) -> ReadResourceResponse {
        ReadResourceResponse {
            new_state: Some(req.current_state),
            private: req.private,
            ..ReadResourceResponse::default()
        }
    }

    /// Imports a managed resource by id.
    async fn import_resource_state(&self, req: ImportRequest) -> ImportResponse {
        ImportResponse {
            diagnostics: unsupported(&req.type_name).diagnostics,
            ..ImportResponse::default()
        }
    }

    /// Validates an ephemeral resource's configuration.
    async fn validate_ephemeral_resource_config(
        &self,
        _type_name: &str,
        _config: Value,
    ) -> Diagnostics {
        Diagnostics::new()
    }

    /// Opens an ephemeral resource.
    async fn open_ephemeral_resource(&self, req: ReadRequest) -> OpenResponse {
        OpenResponse {
            diagnostics: unsupported(&req.type_name).diagnostics,
            ..OpenResponse::default()
        }
    }

    /// Renews an ephemeral resource.
    async fn renew_ephemeral_resource(
        &self,
        _type_name: &str,
        private: Option<Vec<u8>>,
    ) -> (Option<Vec<u8>>, Option<std::time::SystemTime>, Diagnostics) {
        (private, None, Diagnostics::new())
    }

    /// Closes an ephemeral resource.
    async fn close_ephemeral_resource(
        &self,
        _type_name: &str,
        _private: Option<Vec<u8>>,
    ) -> Diagnostics {
        Diagnostics::new()
    }
}

fn unsupported(type_name: &str) -> ReadResponse {
    let mut diagnostics = Diagnostics::new();
    diagnostics.error(
        "Unsupported operation",
        format!("This provider does not support this operation for {type_name:?}."),
    );
    ReadResponse {
        diagnostics,
        ..ReadResponse::default()
    }
}
