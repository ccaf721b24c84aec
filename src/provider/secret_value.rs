//! `resource "atmos_secret_value"`: writes one declared secret to its backend.
//!
//! The value comes from `value` (sensitive, kept in state like any sensitive argument) or from
//! `value_wo` (write-only: never in a plan or state), whose changes are applied when
//! `value_wo_version` changes. State holds where the value lives and the backend's version id,
//! never the value of `value_wo` and never a hash of it.
//!
//! Drift: a refresh that finds no value plans a re-create; one that finds another version than
//! the one we wrote (kept in private state) plans an update that writes the configured value back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::diag::{AttributePath, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::service::{
    ApplyRequest, ApplyResponse, ImportRequest, ImportResponse, PlanRequest, PlanResponse,
    ReadResourceRequest, ReadResourceResponse,
};
use crate::protocol::value::{Type, Unknown, Value};
use crate::resolve::{ResolvedSecret, Workspace};
use crate::sensitive::SecretValue;
use crate::store::SecretStore;

use super::config::Session;
use super::secret::resolve_diagnostic;
use super::string_attr;

/// The type name.
pub const TYPE_NAME: &str = "atmos_secret_value";

/// The schema.
pub fn schema() -> Schema {
    Schema::new(Block::of(
        "Writes the value of a secret declared in Atmos stack configuration to the backend its \
         declaration names. Prefer `value_wo` (OpenTofu 1.11+): the value then never reaches a \
         plan or state file.",
        vec![
            Attribute::required("name", Type::String)
                .describe("Name of the secret as declared under `secrets.vars`."),
            Attribute::optional_computed("stack", Type::String).describe(
                "Stack, by logical name or manifest path. Defaults to the provider's `stack`.",
            ),
            Attribute::optional("component", Type::String).describe(
                "Component instance, for an instance-scoped secret. Writing with a component a \
                 secret that is stack-scoped there is an error: declare it under the component \
                 first, or write it without one.",
            ),
            Attribute::optional("value", Type::String)
                .sensitive()
                .describe("The value. Kept in state (as sensitive). Conflicts with `value_wo`."),
            Attribute::optional("value_wo", Type::String)
                .write_only()
                .describe(
                    "The value, write-only: never stored in a plan or state. Changes are applied \
                     when `value_wo_version` changes.",
                ),
            Attribute::optional("value_wo_version", Type::Number)
                .describe("Bump to write `value_wo` again (for example after rotating it)."),
            Attribute::computed("id", Type::String)
                .describe("`stack/component/NAME`, or `stack//NAME` without a component."),
            Attribute::computed("scope", Type::String)
                .describe("Where the value lives: `instance`, `stack` or `global`."),
            Attribute::computed("store", Type::String)
                .describe("The store (or SOPS provider) holding the value."),
            Attribute::computed("version", Type::String)
                .describe("The backend's version id of the value written."),
        ],
    ))
}

/// What we keep in private state: the version we wrote, to tell our writes from others'.
#[derive(Serialize, Deserialize, Default)]
struct Private {
    written: Option<String>,
}

fn private_of(bytes: &[u8]) -> Private {
    serde_json::from_slice(bytes).unwrap_or_default()
}

fn private_bytes(written: &str) -> Vec<u8> {
    serde_json::to_vec(&Private {
        written: Some(written.to_owned()),
    })
    .unwrap_or_default()
}

fn unknown() -> Value {
    Value::Unknown(Unknown {
        not_null: true,
        ..Unknown::default()
    })
}

fn set(v: &mut Value, name: &str, new: Value) {
    if let Value::Object(attrs) = v {
        attrs.insert(name.to_owned(), new);
    }
}

/// Checks the arguments (values may still be unknown).
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = super::secret::validate(config);
    let value = config.attr("value").unwrap_or(&Value::Null);
    let wo = config.attr("value_wo").unwrap_or(&Value::Null);
    let wo_version = config.attr("value_wo_version").unwrap_or(&Value::Null);
    match (value.is_null(), wo.is_null()) {
        (false, false) => d.attribute_error(
            AttributePath::attr("value_wo"),
            "Conflicting arguments",
            "Set either `value` or `value_wo`, not both.",
        ),
        (true, true) => d.attribute_error(
            AttributePath::attr("value"),
            "Missing value",
            "Set `value_wo` (write-only, recommended) or `value`.",
        ),
        _ => {}
    }
    if !wo_version.is_null() && wo.is_null() {
        d.attribute_error(
            AttributePath::attr("value_wo_version"),
            "`value_wo_version` without `value_wo`",
            "`value_wo_version` only triggers writes of `value_wo`; set `value_wo` or remove it.",
        );
    }
    if !wo.is_null() && wo_version.is_null() {
        d.warning(
            Some(AttributePath::attr("value_wo_version")),
            "No `value_wo_version`",
            "OpenTofu cannot see changes to a write-only value. Without `value_wo_version`, a \
             new `value_wo` is only written when the resource is created or replaced.",
        );
    }
    d
}

/// The coordinates a state or configuration names: (stack, component, name).
struct Names {
    stack: String,
    component: Option<String>,
    name: String,
}

fn names_from_state(state: &Value) -> Option<Names> {
    Some(Names {
        stack: string_attr(state, "stack")?,
        component: string_attr(state, "component"),
        name: string_attr(state, "name")?,
    })
}

fn id_of(n: &Names) -> String {
    format!(
        "{}/{}/{}",
        n.stack,
        n.component.as_deref().unwrap_or(""),
        n.name
    )
}

fn check_write(ws: &Workspace, n: &Names) -> Result<ResolvedSecret, Diagnostics> {
    ws.check_write(&n.stack, n.component.as_deref(), &n.name)
        .map_err(|e| resolve_diagnostic(&e))
}

fn error(summary: &str, detail: String) -> Diagnostics {
    let mut d = Diagnostics::new();
    d.error(summary, detail);
    d
}

/// Plans a create, update, replace or destroy.
pub async fn plan(session: &Session, req: PlanRequest) -> PlanResponse {
    let mut resp = PlanResponse {
        planned_private: req.prior_private.clone(),
        ..PlanResponse::default()
    };
    if req.proposed_new_state.is_null() {
        resp.planned_state = Some(Value::Null);
        return resp;
    }
    resp.diagnostics = validate(&req.config);
    if resp.diagnostics.has_errors() {
        return resp;
    }
    let mut planned = req.proposed_new_state.clone();
    let prior = &req.prior_state;

    // Replacement when the secret's identity changes.
    if !prior.is_null() {
        for attr in ["name", "stack", "component"] {
            let now = if attr == "stack" && req.config.attr(attr).is_some_and(Value::is_null) {
                // An unset stack keeps what it resolved to before, unless the default changed.
                session
                    .default_stack
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null)
            } else {
                req.config.attr(attr).cloned().unwrap_or(Value::Null)
            };
            if prior.attr(attr) != Some(&now) {
                resp.requires_replace.push(AttributePath::attr(attr));
            }
        }
    }
    let replacing = !resp.requires_replace.is_empty();

    let config_unknown = ["name", "stack", "component"]
        .iter()
        .any(|a| req.config.attr(a).is_some_and(Value::is_unknown));
    let Some(ws) = session.workspace.as_ref().filter(|_| !config_unknown) else {
        for attr in ["id", "scope", "store", "version"] {
            set(&mut planned, attr, unknown());
        }
        if req.config.attr("stack").is_some_and(Value::is_null) {
            set(&mut planned, "stack", unknown());
        }
        resp.planned_state = Some(planned);
        return resp;
    };

    let stack = match string_attr(&req.config, "stack").or_else(|| session.default_stack.clone()) {
        Some(s) => s,
        None => {
            resp.diagnostics.attribute_error(
                AttributePath::attr("stack"),
                "No stack",
                "Set `stack` here, or a default `stack` in the provider block.",
            );
            return resp;
        }
    };
    let names = Names {
        stack,
        component: string_attr(&req.config, "component"),
        name: string_attr(&req.config, "name").unwrap_or_default(),
    };
    let resolved = match check_write(ws, &names) {
        Ok(r) => r,
        Err(d) => {
            resp.diagnostics.extend(d);
            return resp;
        }
    };
    // A store that cannot be opened (unsupported kind, bad options, unreadable key file) fails
    // the plan, not the apply. Opening reads no value (Vault does check its token).
    if let Err(e) = session.backends.get(ws, &resolved).await {
        resp.diagnostics.attribute_error(
            AttributePath::attr("name"),
            "Store cannot be used",
            format!(
                "Secret {:?} is declared in {}, which cannot be opened: {e}.",
                resolved.name, resolved.backend
            ),
        );
        return resp;
    }
    set(&mut planned, "stack", Value::String(names.stack.clone()));
    set(&mut planned, "id", Value::String(id_of(&names)));
    set(
        &mut planned,
        "scope",
        Value::String(resolved.scope.to_string()),
    );
    set(
        &mut planned,
        "store",
        Value::String(resolved.backend.name().to_owned()),
    );

    let changed = prior.is_null()
        || replacing
        || req.config.attr("value") != prior.attr("value")
        || req.config.attr("value_wo_version") != prior.attr("value_wo_version")
        || req.config.attr("value").is_some_and(Value::is_unknown)
        || {
            // Someone else wrote since our last write: write ours back.
            let written = private_of(&req.prior_private).written;
            written.is_some() && prior.attr("version").and_then(Value::as_str) != written.as_deref()
        };
    if changed {
        set(&mut planned, "version", unknown());
    }
    resp.planned_state = Some(planned);
    resp
}

/// Applies a planned change.
pub async fn apply(session: &Session, req: ApplyRequest) -> ApplyResponse {
    let mut resp = ApplyResponse::default();
    let Some(ws) = &session.workspace else {
        resp.diagnostics = error(
            "Provider configuration unknown",
            "The atmos provider's configuration is still unknown at apply time.".into(),
        );
        return resp;
    };
    if req.planned_state.is_null() {
        // Destroy: remove the value with the backend's own semantics.
        if let Some(names) = names_from_state(&req.prior_state) {
            match ws.resolve(&names.stack, names.component.as_deref(), &names.name) {
                Ok(resolved) => {
                    let result = match session.backends.get(ws, &resolved).await {
                        Ok(store) => store.delete(&resolved.location).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        resp.diagnostics = error(
                            "Deleting the secret failed",
                            format!("Secret {:?}: {e}.", names.name),
                        );
                        resp.new_state = Some(req.prior_state);
                        return resp;
                    }
                }
                Err(e) => {
                    // The declaration is gone; there is nothing we can address any more.
                    resp.diagnostics.warning(
                        None,
                        "Secret no longer declared",
                        format!(
                            "{} The value (if any) was left in place; remove it from the \
                             backend by hand if it should go.",
                            super::secret::sentence(&e.to_string())
                        ),
                    );
                }
            }
        }
        resp.new_state = Some(Value::Null);
        return resp;
    }

    let mut state = req.planned_state.clone();
    if !state.attr("version").is_some_and(Value::is_unknown) {
        // Nothing to write (only bookkeeping changed).
        resp.private = req.planned_private;
        resp.new_state = Some(state);
        return resp;
    }
    let Some(names) = names_from_state(&state) else {
        resp.diagnostics = error(
            "Invalid planned state",
            "The planned state lacks a name or stack. This is a bug in the provider.".into(),
        );
        return resp;
    };
    let resolved = match check_write(ws, &names) {
        Ok(r) => r,
        Err(d) => {
            resp.diagnostics = d;
            return resp;
        }
    };
    let value = match (req.config.attr("value"), req.config.attr("value_wo")) {
        (Some(Value::String(v)), _) | (_, Some(Value::String(v))) => SecretValue::new(v.clone()),
        _ => {
            resp.diagnostics.attribute_error(
                AttributePath::attr("value_wo"),
                "No value to write",
                "Neither `value` nor `value_wo` holds a known string at apply time.",
            );
            return resp;
        }
    };
    let written = match session.backends.get(ws, &resolved).await {
        Ok(store) => store.write(&resolved.location, &value).await,
        Err(e) => Err(e),
    };
    match written {
        Ok(version) => {
            log::info!(
                "wrote secret {} ({} scope) to {} at {}, version {version}",
                resolved.name,
                resolved.scope,
                resolved.backend,
                resolved.location
            );
            set(&mut state, "version", Value::String(version.clone()));
            resp.private = private_bytes(&version);
            resp.new_state = Some(state);
        }
        Err(e) => {
            resp.diagnostics = error(
                "Writing the secret failed",
                format!("Secret {:?} to {}: {e}.", names.name, resolved.backend),
            );
            // Nothing was written: keep the prior object (null on create).
            resp.new_state = Some(req.prior_state);
        }
    }
    resp
}

/// Refreshes: detects deletion and rotation out of band.
pub async fn read(session: &Session, req: ReadResourceRequest) -> ReadResourceResponse {
    let mut resp = ReadResourceResponse {
        private: req.private.clone(),
        ..ReadResourceResponse::default()
    };
    let state = req.current_state;
    let (Some(ws), Some(names)) = (&session.workspace, names_from_state(&state)) else {
        resp.new_state = Some(state);
        return resp;
    };
    let resolved = match ws.resolve(&names.stack, names.component.as_deref(), &names.name) {
        Ok(r) => r,
        Err(e) => {
            resp.diagnostics.warning(
                None,
                "Secret no longer resolvable",
                format!(
                    "{} Keeping the recorded state.",
                    super::secret::sentence(&e.to_string())
                ),
            );
            resp.new_state = Some(state);
            return resp;
        }
    };
    let current = match session.backends.get(ws, &resolved).await {
        Ok(store) => store.read(&resolved.location).await,
        Err(e) => Err(e),
    };
    match current {
        Ok(None) => {
            log::info!(
                "secret {} is gone from {}: planning to write it again",
                names.name,
                resolved.backend
            );
            resp.new_state = Some(Value::Null);
        }
        Ok(Some(found)) => {
            let mut new_state = state.clone();
            if let Some(version) = found.version {
                set(&mut new_state, "version", Value::String(version));
            }
            if state.attr("value").is_some_and(|v| !v.is_null()) {
                set(
                    &mut new_state,
                    "value",
                    Value::String(found.value.expose().to_owned()),
                );
            }
            resp.new_state = Some(new_state);
        }
        Err(e) => {
            resp.diagnostics = error(
                "Reading the secret failed",
                format!("Secret {:?} from {}: {e}.", names.name, resolved.backend),
            );
            resp.new_state = Some(state);
        }
    }
    resp
}

/// Parses an import id: `stack/component/NAME`, or `stack//NAME` for a stack-scoped write.
/// Stack manifest paths and component names may contain `/`, so the split is checked against the
/// workspace.
fn parse_import_id(ws: &Workspace, id: &str) -> Result<Names, String> {
    let usage = "expected `stack/component/NAME`, or `stack//NAME` without a component";
    let (rest, name) = id.rsplit_once('/').ok_or_else(|| usage.to_owned())?;
    if name.is_empty() || rest.is_empty() {
        return Err(usage.to_owned());
    }
    if let Some(stack) = rest.strip_suffix('/') {
        return Ok(Names {
            stack: stack.to_owned(),
            component: None,
            name: name.to_owned(),
        });
    }
    for (i, _) in rest.match_indices('/') {
        let (stack, component) = (&rest[..i], &rest[i + 1..]);
        if let Ok(components) = ws.components(stack)
            && components.iter().any(|c| c == component)
        {
            return Ok(Names {
                stack: stack.to_owned(),
                component: Some(component.to_owned()),
                name: name.to_owned(),
            });
        }
    }
    Err(format!(
        "{usage}; no stack and component instance match {rest:?}"
    ))
}

/// Imports by id.
pub async fn import(session: &Session, req: ImportRequest) -> ImportResponse {
    let mut resp = ImportResponse::default();
    let Some(ws) = &session.workspace else {
        resp.diagnostics = error(
            "Provider configuration unknown",
            "Import needs a known provider configuration.".into(),
        );
        return resp;
    };
    let names = match parse_import_id(ws, &req.id) {
        Ok(n) => n,
        Err(e) => {
            resp.diagnostics = error("Invalid import id", format!("{:?}: {e}.", req.id));
            return resp;
        }
    };
    let resolved = match check_write(ws, &names) {
        Ok(r) => r,
        Err(d) => {
            resp.diagnostics = d;
            return resp;
        }
    };
    let found = match session.backends.get(ws, &resolved).await {
        Ok(store) => store.read(&resolved.location).await,
        Err(e) => Err(e),
    };
    let version = match found {
        Ok(Some(v)) => v.version.unwrap_or_default(),
        Ok(None) => {
            resp.diagnostics = error(
                "Nothing to import",
                format!(
                    "Secret {:?} has no value in {} at {}.",
                    names.name, resolved.backend, resolved.location
                ),
            );
            return resp;
        }
        Err(e) => {
            resp.diagnostics = error(
                "Reading the secret failed",
                format!("Secret {:?}: {e}.", names.name),
            );
            return resp;
        }
    };
    let attrs: BTreeMap<String, Value> = [
        ("name", Value::String(names.name.clone())),
        ("stack", Value::String(names.stack.clone())),
        (
            "component",
            names
                .component
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        ),
        ("value", Value::Null),
        ("value_wo", Value::Null),
        ("value_wo_version", Value::Null),
        ("id", Value::String(id_of(&names))),
        ("scope", Value::String(resolved.scope.to_string())),
        ("store", Value::String(resolved.backend.name().to_owned())),
        ("version", Value::String(version.clone())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    resp.imported
        .push((Value::Object(attrs), private_bytes(&version)));
    resp
}
