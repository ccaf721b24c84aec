//! The tfplugin6 `Provider` gRPC service: a thin adapter that decodes each request against the
//! schema, calls the [`ProviderService`], and encodes the answer. Terraform semantics that hold for
//! every provider live here too: write-only attributes are nulled in everything returned, the
//! write-only capability is checked, unknown type names are refused, and `StopProvider` cancels
//! in-flight calls.

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
use super::proto::tfplugin6 as pb;
use super::schema::{Block, Nesting, Schema};
use super::service::{
    ApplyRequest, ClientCapabilities, Deferred, ImportRequest, PlanRequest, ProviderService,
    ReadRequest, ReadResourceRequest,
};
use super::value::{self, Type, Value};

/// The gRPC face of a [`ProviderService`].
pub struct ProviderServer<P: ProviderService> {
    provider: Arc<P>,
    stop: RwLock<CancellationToken>,
    schema_response: pb::get_provider_schema::Response,
}

impl<P: ProviderService> ProviderServer<P> {
    /// Wraps a provider; the schema response is built once.
    pub fn new(provider: Arc<P>) -> Self {
        let schema_response = schema_response(provider.schemas());
        ProviderServer {
            provider,
            stop: RwLock::new(CancellationToken::new()),
            schema_response,
        }
    }

    fn token(&self) -> CancellationToken {
        match self.stop.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `fut`, unless `StopProvider` arrives first.
    async fn guarded<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
        on_stop: impl FnOnce(Diagnostics) -> T,
    ) -> T {
        let token = self.token();
        tokio::select! {
            out = fut => out,
            () = token.cancelled() => {
                let mut d = Diagnostics::new();
                d.error("Provider stopped", "The operation was cancelled because OpenTofu asked the provider to stop.");
                on_stop(d)
            }
        }
    }

    fn schema_of(&self, kind: Kind, type_name: &str) -> Result<&Schema, Diagnostics> {
        let schemas = self.provider.schemas();
        let map = match kind {
            Kind::Resource => &schemas.resources,
            Kind::DataSource => &schemas.data_sources,
            Kind::Ephemeral => &schemas.ephemeral_resources,
        };
        map.get(type_name).ok_or_else(|| {
            let mut d = Diagnostics::new();
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            d.error(
                format!("Unknown {} type", kind.noun()),
                format!(
                    "This provider has no {} named {type_name:?}. It has: {}.",
                    kind.noun(),
                    known.join(", ")
                ),
            );
            d
        })
    }
}

impl<P: ProviderService> ProviderServer<P> {
    /// The schema of `type_name` and `config` decoded against it.
    fn decode_config(
        &self,
        kind: Kind,
        type_name: &str,
        config: Option<&pb::DynamicValue>,
    ) -> Result<(&Schema, Type, Value), Diagnostics> {
        let schema = self.schema_of(kind, type_name)?;
        let ty = schema.implied_type();
        let config = decode(config, &ty, "configuration")?;
        Ok((schema, ty, config))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Resource,
    DataSource,
    Ephemeral,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Resource => "resource",
            Kind::DataSource => "data source",
            Kind::Ephemeral => "ephemeral resource",
        }
    }
}

// ---- value conversion ----

fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else {
        return Ok(Value::Null);
    };
    if dv.msgpack.is_empty() && dv.json.is_empty() {
        return Ok(Value::Null);
    }
    value::decode_dynamic_value(&dv.msgpack, &dv.json, ty).map_err(|e| {
        let mut d = Diagnostics::new();
        d.0.push(Diagnostic {
            severity: Severity::Error,
            summary: format!("Invalid {what} received from OpenTofu"),
            detail: format!("The provider could not decode the {what}: {}.", e.message),
            attribute: Some(e.path.clone()).filter(|p| !p.0.is_empty()),
        });
        d
    })
}

fn encode(v: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<pb::DynamicValue> {
    match value::encode_msgpack(v, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error(
                "Provider produced an invalid value",
                format!(
                    "This is a bug in the provider: encoding failed at {}: {}.",
                    e.path, e.message
                ),
            );
            None
        }
    }
}

/// Sets every write-only attribute (at any depth of nested blocks) to null.
pub fn null_write_only(value: &mut Value, block: &Block) {
    let Value::Object(attrs) = value else {
        return;
    };
    for a in &block.attributes {
        if a.write_only
            && let Some(v) = attrs.get_mut(&a.name)
        {
            *v = Value::Null;
        }
    }
    for nb in &block.blocks {
        let Some(v) = attrs.get_mut(&nb.type_name) else {
            continue;
        };
        match (nb.nesting, v) {
            (Nesting::Single | Nesting::Group, v) => null_write_only(v, &nb.block),
            (_, Value::List(items) | Value::Set(items)) => {
                items.iter_mut().for_each(|i| null_write_only(i, &nb.block))
            }
            (_, Value::Map(items)) => items
                .values_mut()
                .for_each(|i| null_write_only(i, &nb.block)),
            _ => {}
        }
    }
}

fn write_only_paths_set(value: &Value, block: &Block, path: &AttributePath) -> Vec<AttributePath> {
    let mut out = Vec::new();
    for a in &block.attributes {
        if a.write_only && value.attr(&a.name).is_some_and(|v| !v.is_null()) {
            out.push(path.child(a.name.clone()));
        }
    }
    for nb in &block.blocks {
        if let Some(v @ Value::Object(_)) = value.attr(&nb.type_name) {
            out.extend(write_only_paths_set(
                v,
                &nb.block,
                &path.child(nb.type_name.clone()),
            ));
        }
    }
    out
}

fn capabilities(c: Option<&pb::ClientCapabilities>) -> ClientCapabilities {
    c.map(|c| ClientCapabilities {
        deferral_allowed: c.deferral_allowed,
        write_only_attributes_allowed: c.write_only_attributes_allowed,
    })
    .unwrap_or_default()
}

fn deferred(d: Option<Deferred>) -> Option<pb::Deferred> {
    d.map(|d| pb::Deferred {
        reason: match d {
            Deferred::ResourceConfigUnknown => pb::deferred::Reason::ResourceConfigUnknown,
            Deferred::ProviderConfigUnknown => pb::deferred::Reason::ProviderConfigUnknown,
        } as i32,
    })
}

/// Converts diagnostics to the wire form.
pub fn diagnostics(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d.attribute.as_ref().map(attribute_path),
        })
        .collect()
}

fn attribute_path(p: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(n) => Selector::AttributeName(n.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

// ---- schema conversion ----

fn proto_schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(proto_block(&s.block)),
    }
}

fn proto_block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b
            .attributes
            .iter()
            .map(|a| pb::schema::Attribute {
                name: a.name.clone(),
                r#type: a.ty.to_json(),
                nested_type: None,
                description: a.description.clone(),
                required: a.required,
                optional: a.optional,
                computed: a.computed,
                sensitive: a.sensitive,
                description_kind: pb::StringKind::Markdown as i32,
                deprecated: a.deprecated.is_some(),
                write_only: a.write_only,
                deprecation_message: a.deprecated.clone().unwrap_or_default(),
            })
            .collect(),
        block_types: b
            .blocks
            .iter()
            .map(|nb| pb::schema::NestedBlock {
                type_name: nb.type_name.clone(),
                block: Some(proto_block(&nb.block)),
                nesting: match nb.nesting {
                    Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                    Nesting::Group => pb::schema::nested_block::NestingMode::Group,
                    Nesting::List => pb::schema::nested_block::NestingMode::List,
                    Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                    Nesting::Map => pb::schema::nested_block::NestingMode::Map,
                } as i32,
                min_items: nb.min_items,
                max_items: nb.max_items,
            })
            .collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: b.deprecated,
        deprecation_message: String::new(),
    }
}

fn schema_response(s: &super::service::Schemas) -> pb::get_provider_schema::Response {
    let map = |m: &std::collections::BTreeMap<String, Schema>| {
        m.iter()
            .map(|(k, v)| (k.clone(), proto_schema(v)))
            .collect()
    };
    pb::get_provider_schema::Response {
        provider: Some(proto_schema(&s.provider)),
        resource_schemas: map(&s.resources),
        data_source_schemas: map(&s.data_sources),
        ephemeral_resource_schemas: map(&s.ephemeral_resources),
        server_capabilities: Some(server_capabilities()),
        ..Default::default()
    }
}

fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

fn system_time_to_timestamp(t: std::time::SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

// ---- the service ----

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<P: ProviderService> pb::provider_server::Provider for ProviderServer<P> {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Rpc<pb::get_metadata::Response> {
        let s = self.provider.schemas();
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(server_capabilities()),
            data_sources: s
                .data_sources
                .keys()
                .map(|k| pb::get_metadata::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: s
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            ephemeral_resources: s
                .ephemeral_resources
                .keys()
                .map(|k| pb::get_metadata::EphemeralMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        Ok(Response::new(self.schema_response.clone()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Rpc<pb::get_resource_identity_schemas::Response> {
        Ok(Response::new(
            pb::get_resource_identity_schemas::Response::default(),
        ))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Rpc<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let ty = self.provider.schemas().provider.implied_type();
        let diags = match decode(req.config.as_ref(), &ty, "provider configuration") {
            Ok(config) => {
                self.guarded(self.provider.validate_provider_config(config), |d| d)
                    .await
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Rpc<pb::configure_provider::Response> {
        let req = req.into_inner();
        let ty = self.provider.schemas().provider.implied_type();
        let caps = capabilities(req.client_capabilities.as_ref());
        let diags = match decode(req.config.as_ref(), &ty, "provider configuration") {
            Ok(config) => {
                self.guarded(self.provider.configure(config, caps), |d| d)
                    .await
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Rpc<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let diags = match self.decode_config(Kind::DataSource, &req.type_name, req.config.as_ref())
        {
            Ok((_, _, config)) => {
                self.guarded(
                    self.provider
                        .validate_data_source_config(&req.type_name, config),
                    |d| d,
                )
                .await
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Rpc<pb::read_data_source::Response> {
        let req = req.into_inner();
        let (_, ty, config) =
            match self.decode_config(Kind::DataSource, &req.type_name, req.config.as_ref()) {
                Ok(v) => v,
                Err(d) => {
                    return Ok(Response::new(pb::read_data_source::Response {
                        diagnostics: diagnostics(&d),
                        ..Default::default()
                    }));
                }
            };
        let read = ReadRequest {
            type_name: req.type_name.clone(),
            config,
            capabilities: capabilities(req.client_capabilities.as_ref()),
        };
        let mut resp = self
            .guarded(self.provider.read_data_source(read), |diagnostics| {
                super::service::ReadResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let state = resp
            .state
            .as_ref()
            .and_then(|s| encode(s, &ty, &mut resp.diagnostics));
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: diagnostics(&resp.diagnostics),
            deferred: deferred(resp.deferred),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Rpc<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let caps = capabilities(req.client_capabilities.as_ref());
        let diags = match self.decode_config(Kind::Resource, &req.type_name, req.config.as_ref()) {
            Ok((schema, _, config)) => {
                let mut diags = Diagnostics::new();
                if !caps.write_only_attributes_allowed {
                    for path in write_only_paths_set(&config, &schema.block, &AttributePath::root())
                    {
                        diags.attribute_error(
                            path,
                            "Write-only attribute not supported by this client",
                            "This attribute is write-only, which needs OpenTofu 1.11 or later \
                             (or Terraform 1.11 or later). Upgrade, or use the non-write-only \
                             attribute instead.",
                        );
                    }
                }
                diags.extend(
                    self.guarded(
                        self.provider
                            .validate_resource_config(&req.type_name, config, caps),
                        |d| d,
                    )
                    .await,
                );
                diags
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let schema = match self.schema_of(Kind::Resource, &req.type_name) {
            Ok(s) => s,
            Err(d) => {
                return Ok(Response::new(pb::upgrade_resource_state::Response {
                    diagnostics: diagnostics(&d),
                    ..Default::default()
                }));
            }
        };
        let ty = schema.implied_type();
        let raw = req.raw_state.map(|r| r.json).unwrap_or_default();
        let upgraded = if raw.is_empty() {
            Some(Value::Null)
        } else {
            match value::decode_json_state(&raw, &ty) {
                Ok(mut v) => {
                    null_write_only(&mut v, &schema.block);
                    Some(v)
                }
                Err(e) => {
                    diags.error(
                        "Stored state cannot be read",
                        format!(
                            "The state of this {} does not match its schema at {}: {}.",
                            req.type_name, e.path, e.message
                        ),
                    );
                    None
                }
            }
        };
        let upgraded_state = upgraded.and_then(|v| encode(&v, &ty, &mut diags));
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Rpc<pb::read_resource::Response> {
        let req = req.into_inner();
        let schema = match self.schema_of(Kind::Resource, &req.type_name) {
            Ok(s) => s,
            Err(d) => return Ok(Response::new(read_resource_error(d))),
        };
        let ty = schema.implied_type();
        let current = match decode(req.current_state.as_ref(), &ty, "current state") {
            Ok(v) => v,
            Err(d) => return Ok(Response::new(read_resource_error(d))),
        };
        let read = ReadResourceRequest {
            type_name: req.type_name.clone(),
            current_state: current.clone(),
            private: req.private.clone(),
            capabilities: capabilities(req.client_capabilities.as_ref()),
        };
        let mut resp = self
            .guarded(self.provider.read_resource(read), |diagnostics| {
                super::service::ReadResourceResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let mut state = resp.new_state.take().unwrap_or(current);
        null_write_only(&mut state, &schema.block);
        let new_state = encode(&state, &ty, &mut resp.diagnostics);
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics(&resp.diagnostics),
            private: if resp.private.is_empty() {
                req.private
            } else {
                resp.private
            },
            deferred: deferred(resp.deferred),
            new_identity: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Rpc<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let schema = match self.schema_of(Kind::Resource, &req.type_name) {
            Ok(s) => s,
            Err(d) => return Ok(Response::new(plan_error(d))),
        };
        let ty = schema.implied_type();
        let decoded = (|| {
            Ok::<_, Diagnostics>((
                decode(req.prior_state.as_ref(), &ty, "prior state")?,
                decode(req.proposed_new_state.as_ref(), &ty, "proposed new state")?,
                decode(req.config.as_ref(), &ty, "configuration")?,
            ))
        })();
        let (prior, proposed, config) = match decoded {
            Ok(v) => v,
            Err(d) => return Ok(Response::new(plan_error(d))),
        };
        let plan = PlanRequest {
            type_name: req.type_name.clone(),
            prior_state: prior,
            proposed_new_state: proposed.clone(),
            config,
            prior_private: req.prior_private.clone(),
            capabilities: capabilities(req.client_capabilities.as_ref()),
        };
        let mut resp = self
            .guarded(self.provider.plan_resource_change(plan), |diagnostics| {
                super::service::PlanResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let mut planned = resp.planned_state.take().unwrap_or(proposed);
        null_write_only(&mut planned, &schema.block);
        let planned_state = if resp.diagnostics.has_errors() {
            None
        } else {
            encode(&planned, &ty, &mut resp.diagnostics)
        };
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace: resp.requires_replace.iter().map(attribute_path).collect(),
            planned_private: resp.planned_private,
            diagnostics: diagnostics(&resp.diagnostics),
            legacy_type_system: false,
            deferred: deferred(resp.deferred),
            planned_identity: None,
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Rpc<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let schema = match self.schema_of(Kind::Resource, &req.type_name) {
            Ok(s) => s,
            Err(d) => return Ok(Response::new(apply_error(d))),
        };
        let ty = schema.implied_type();
        let decoded = (|| {
            Ok::<_, Diagnostics>((
                decode(req.prior_state.as_ref(), &ty, "prior state")?,
                decode(req.planned_state.as_ref(), &ty, "planned state")?,
                decode(req.config.as_ref(), &ty, "configuration")?,
            ))
        })();
        let (prior, planned, config) = match decoded {
            Ok(v) => v,
            Err(d) => return Ok(Response::new(apply_error(d))),
        };
        let apply = ApplyRequest {
            type_name: req.type_name.clone(),
            prior_state: prior,
            planned_state: planned,
            config,
            planned_private: req.planned_private.clone(),
        };
        let mut resp = self
            .guarded(self.provider.apply_resource_change(apply), |diagnostics| {
                super::service::ApplyResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let new_state = match resp.new_state.take() {
            Some(mut v) => {
                null_write_only(&mut v, &schema.block);
                encode(&v, &ty, &mut resp.diagnostics)
            }
            None => None,
        };
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: resp.private,
            diagnostics: diagnostics(&resp.diagnostics),
            legacy_type_system: false,
            new_identity: None,
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Rpc<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let schema = match self.schema_of(Kind::Resource, &req.type_name) {
            Ok(s) => s,
            Err(d) => {
                return Ok(Response::new(pb::import_resource_state::Response {
                    diagnostics: diagnostics(&d),
                    ..Default::default()
                }));
            }
        };
        let ty = schema.implied_type();
        let import = ImportRequest {
            type_name: req.type_name.clone(),
            id: req.id.clone(),
            capabilities: capabilities(req.client_capabilities.as_ref()),
        };
        let mut resp = self
            .guarded(self.provider.import_resource_state(import), |diagnostics| {
                super::service::ImportResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let mut imported = Vec::new();
        for (mut state, private) in std::mem::take(&mut resp.imported) {
            null_write_only(&mut state, &schema.block);
            if let Some(state) = encode(&state, &ty, &mut resp.diagnostics) {
                imported.push(pb::import_resource_state::ImportedResource {
                    type_name: req.type_name.clone(),
                    state: Some(state),
                    private,
                    identity: None,
                });
            }
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diagnostics(&resp.diagnostics),
            deferred: None,
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Rpc<pb::validate_ephemeral_resource_config::Response> {
        let req = req.into_inner();
        let diags = match self.decode_config(Kind::Ephemeral, &req.type_name, req.config.as_ref()) {
            Ok((_, _, config)) => {
                self.guarded(
                    self.provider
                        .validate_ephemeral_resource_config(&req.type_name, config),
                    |d| d,
                )
                .await
            }
            Err(d) => d,
        };
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diagnostics(&diags),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Rpc<pb::open_ephemeral_resource::Response> {
        let req = req.into_inner();
        let (_, ty, config) =
            match self.decode_config(Kind::Ephemeral, &req.type_name, req.config.as_ref()) {
                Ok(v) => v,
                Err(d) => {
                    return Ok(Response::new(pb::open_ephemeral_resource::Response {
                        diagnostics: diagnostics(&d),
                        ..Default::default()
                    }));
                }
            };
        let open = ReadRequest {
            type_name: req.type_name.clone(),
            config,
            capabilities: capabilities(req.client_capabilities.as_ref()),
        };
        let mut resp = self
            .guarded(self.provider.open_ephemeral_resource(open), |diagnostics| {
                super::service::OpenResponse {
                    diagnostics,
                    ..Default::default()
                }
            })
            .await;
        let result = resp
            .result
            .as_ref()
            .and_then(|v| encode(v, &ty, &mut resp.diagnostics));
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: diagnostics(&resp.diagnostics),
            renew_at: resp.renew_at.map(system_time_to_timestamp),
            result,
            private: resp.private,
            deferred: deferred(resp.deferred),
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Rpc<pb::renew_ephemeral_resource::Response> {
        let req = req.into_inner();
        let (private, renew_at, diags) = self
            .guarded(
                self.provider
                    .renew_ephemeral_resource(&req.type_name, req.private.clone()),
                |d| (None, None, d),
            )
            .await;
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: diagnostics(&diags),
            renew_at: renew_at.map(system_time_to_timestamp),
            private,
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Rpc<pb::close_ephemeral_resource::Response> {
        let req = req.into_inner();
        let diags = self
            .guarded(
                self.provider
                    .close_ephemeral_resource(&req.type_name, req.private),
                |d| d,
            )
            .await;
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Rpc<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Rpc<pb::stop_provider::Response> {
        // Cancel everything in flight, and arm a fresh token for whatever comes after.
        let mut guard = match self.stop.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.cancel();
        *guard = CancellationToken::new();
        log::info!("StopProvider: in-flight operations cancelled");
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn read_resource_error(d: Diagnostics) -> pb::read_resource::Response {
    pb::read_resource::Response {
        diagnostics: diagnostics(&d),
        ..Default::default()
    }
}

fn plan_error(d: Diagnostics) -> pb::plan_resource_change::Response {
    pb::plan_resource_change::Response {
        diagnostics: diagnostics(&d),
        ..Default::default()
    }
}

fn apply_error(d: Diagnostics) -> pb::apply_resource_change::Response {
    pb::apply_resource_change::Response {
        diagnostics: diagnostics(&d),
        ..Default::default()
    }
}
