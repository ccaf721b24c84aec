//! `data "atmos_secrets"`: every secret declared for a stack (and component), read in batches,
//! as a sensitive map, plus a non-sensitive `status` map for checks like `atmos secret validate`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::protocol::diag::{AttributePath, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::service::{ClientCapabilities, Deferred, ReadResponse};
use crate::protocol::value::{Type, Unknown, Value};
use crate::resolve::ResolvedSecret;
use crate::store::SecretStore;

use super::config::Session;
use super::secret::resolve_diagnostic;
use super::string_attr;

/// The type name.
pub const TYPE_NAME: &str = "atmos_secrets";

/// The schema.
pub fn schema() -> Schema {
    Schema::new(Block::of(
        "Reads every secret declared for a stack (and component instance) in one go, batched \
         per backend. `values` is sensitive; `status` tells which declared secrets have a value \
         without revealing any.",
        vec![
            Attribute::optional("stack", Type::String)
                .describe("Stack, by logical name or manifest path. Defaults to the provider's."),
            Attribute::optional("component", Type::String).describe(
                "Component instance: adds its instance-scoped secrets to the stack's. Defaults \
                 to the provider's `component`.",
            ),
            Attribute::optional("names", Type::List(Box::new(Type::String)))
                .describe("Only these names (each must be declared)."),
            Attribute::computed("values", Type::Map(Box::new(Type::String)))
                .sensitive()
                .describe("Name to value, for every secret that has a value."),
            Attribute::computed("status", Type::Map(Box::new(Type::String)))
                .describe("Name to `initialized` or `missing`, for every selected secret."),
        ],
    ))
}

/// Checks the arguments.
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Some(Value::List(names)) = config.attr("names") {
        let mut seen = BTreeSet::new();
        for (i, n) in names.iter().enumerate() {
            if let Value::String(s) = n
                && !seen.insert(s.clone())
            {
                d.attribute_error(
                    AttributePath::attr("names").index(i as i64),
                    "Duplicate name",
                    format!("{s:?} is listed twice."),
                );
            }
        }
    }
    d
}

fn unknown_result(config: &Value) -> Value {
    let mut attrs = match config {
        Value::Object(a) => a.clone(),
        _ => BTreeMap::new(),
    };
    for name in ["values", "status"] {
        attrs.insert(
            name.to_owned(),
            Value::Unknown(Unknown {
                not_null: true,
                ..Unknown::default()
            }),
        );
    }
    Value::Object(attrs)
}

/// Reads all selected secrets.
pub async fn read(session: &Session, config: &Value, caps: ClientCapabilities) -> ReadResponse {
    let mut resp = ReadResponse {
        diagnostics: validate(config),
        ..ReadResponse::default()
    };
    if resp.diagnostics.has_errors() {
        return resp;
    }
    let inputs_unknown = config.contains_unknown();
    let Some(ws) = session.workspace.as_ref().filter(|_| !inputs_unknown) else {
        if caps.deferral_allowed {
            resp.deferred = Some(if inputs_unknown {
                Deferred::ResourceConfigUnknown
            } else {
                Deferred::ProviderConfigUnknown
            });
        } else {
            resp.state = Some(unknown_result(config));
        }
        return resp;
    };
    let Some(stack) = string_attr(config, "stack").or_else(|| session.default_stack.clone()) else {
        resp.diagnostics.attribute_error(
            AttributePath::attr("stack"),
            "No stack",
            "Set `stack` here, or a default `stack` in the provider block.",
        );
        return resp;
    };
    let component = string_attr(config, "component").or_else(|| session.default_component.clone());
    let declared = match ws.declared(&stack, component.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            resp.diagnostics = resolve_diagnostic(&e);
            return resp;
        }
    };
    let selected: Vec<ResolvedSecret> = match config.attr("names") {
        Some(Value::List(names)) => {
            let mut out = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let Some(name) = n.as_str() else { continue };
                match ws.resolve(&stack, component.as_deref(), name) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        let mut d = resolve_diagnostic(&e);
                        for diag in &mut d.0 {
                            diag.attribute = Some(AttributePath::attr("names").index(i as i64));
                        }
                        resp.diagnostics.extend(d);
                    }
                }
            }
            out
        }
        _ => declared,
    };
    if resp.diagnostics.has_errors() {
        return resp;
    }

    // Group by store so each backend gets one batched read.
    let mut groups: HashMap<String, Vec<&ResolvedSecret>> = HashMap::new();
    for s in &selected {
        groups.entry(format!("{}", s.backend)).or_default().push(s);
    }
    let mut values = BTreeMap::new();
    let mut status = BTreeMap::new();
    for secrets in groups.values() {
        let store = match session.backends.get(secrets[0]).await {
            Ok(s) => s,
            Err(e) => {
                resp.diagnostics.error(
                    format!("Cannot open {}", secrets[0].backend),
                    format!("{e}."),
                );
                continue;
            }
        };
        let locations: Vec<_> = secrets.iter().map(|s| s.location.clone()).collect();
        let results = store.read_many(&locations).await;
        for (secret, result) in secrets.iter().zip(results) {
            match result {
                Ok(Some(v)) => {
                    values.insert(
                        secret.name.clone(),
                        Value::String(v.value.expose().to_owned()),
                    );
                    status.insert(secret.name.clone(), Value::String("initialized".into()));
                }
                Ok(None) => {
                    if secret.required {
                        resp.diagnostics.warning(
                            None,
                            "Required secret has no value",
                            format!(
                                "Secret {:?} is declared required for stack {:?} but {} holds no \
                                 value for it at {}.",
                                secret.name, secret.stack, secret.backend, secret.location
                            ),
                        );
                    }
                    status.insert(secret.name.clone(), Value::String("missing".into()));
                }
                Err(e) => resp.diagnostics.error(
                    "Reading a secret failed",
                    format!("Secret {:?} from {}: {e}.", secret.name, secret.backend),
                ),
            }
        }
    }
    if resp.diagnostics.has_errors() {
        return resp;
    }
    let mut attrs = match config {
        Value::Object(a) => a.clone(),
        _ => BTreeMap::new(),
    };
    attrs.insert("values".into(), Value::Map(values));
    attrs.insert("status".into(), Value::Map(status));
    resp.state = Some(Value::Object(attrs));
    resp
}
