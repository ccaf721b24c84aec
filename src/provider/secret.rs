//! `atmos_secret`: one declared secret, read from its backend. The data source and the ephemeral
//! resource share this code; they differ only in what OpenTofu does with the result (the data
//! source's lands in state as a sensitive value, the ephemeral one never leaves memory).

use std::collections::BTreeMap;

use crate::protocol::diag::{AttributePath, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::service::{ClientCapabilities, Deferred, ReadResponse};
use crate::protocol::value::{Type, Unknown, Value};
use crate::resolve::{ResolveError, ResolvedSecret};

use super::config::Session;
use super::string_attr;

/// The type name, for both the data source and the ephemeral resource.
pub const TYPE_NAME: &str = "atmos_secret";

/// Which face of `atmos_secret`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `data "atmos_secret"`.
    DataSource,
    /// `ephemeral "atmos_secret"`.
    Ephemeral,
}

/// The schema; identical for both kinds but for the description.
pub fn schema(kind: Kind) -> Schema {
    let what = match kind {
        Kind::DataSource => {
            "Reads one secret declared in Atmos stack configuration. The value is sensitive: \
             masked in plans, but kept in state like every data source result. Use the \
             ephemeral resource to keep it out of state."
        }
        Kind::Ephemeral => {
            "Reads one secret declared in Atmos stack configuration without ever writing it to \
             a plan or state file (OpenTofu 1.11 or later)."
        }
    };
    Schema::new(Block::of(
        what,
        vec![
            Attribute::required("name", Type::String)
                .describe("Name of the secret as declared under `secrets.vars`."),
            Attribute::optional("stack", Type::String).describe(
                "Stack, by logical name (e.g. `plat-ue2-prod`) or manifest path. Defaults to the \
                 provider's `stack`.",
            ),
            Attribute::optional("component", Type::String).describe(
                "Component instance. Set it to read an instance-scoped value; a stack-scoped \
                 secret reads the same from every component. Defaults to the provider's \
                 `component`.",
            ),
            Attribute::computed("value", Type::String)
                .sensitive()
                .describe("The secret value. Objects and lists are JSON text."),
            Attribute::computed("scope", Type::String)
                .describe("Where the value lives: `instance`, `stack` or `global`."),
            Attribute::computed("store", Type::String)
                .describe("The store (or SOPS provider) holding the value."),
            Attribute::computed("description", Type::String)
                .describe("The declaration's description."),
        ],
    ))
}

const COMPUTED: [&str; 4] = ["value", "scope", "store", "description"];

/// Checks a configuration before any read (values may be unknown).
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    for attr in ["name", "stack", "component"] {
        if let Some(Value::String(s)) = config.attr(attr)
            && s.trim().is_empty()
        {
            d.attribute_error(
                AttributePath::attr(attr),
                "Empty value",
                format!("`{attr}` must not be empty."),
            );
        }
    }
    d
}

/// The configuration with every computed attribute unknown: the answer during plan when inputs
/// are not known yet.
fn unknown_result(config: &Value) -> Value {
    let mut attrs = match config {
        Value::Object(a) => a.clone(),
        _ => BTreeMap::new(),
    };
    for name in COMPUTED {
        attrs.insert(
            name.to_owned(),
            Value::Unknown(Unknown {
                not_null: name != "description",
                ..Unknown::default()
            }),
        );
    }
    Value::Object(attrs)
}

/// Turns a resolution failure into a diagnostic on the attribute at fault.
pub fn resolve_diagnostic(err: &ResolveError) -> Diagnostics {
    let (attr, summary) = match err {
        ResolveError::UnknownStack { .. } => ("stack", "Unknown stack"),
        ResolveError::UnknownComponent { .. } => ("component", "Unknown component"),
        ResolveError::AbstractComponent { .. } => ("component", "Abstract component"),
        ResolveError::Undeclared { .. } => ("name", "Undeclared secret"),
        ResolveError::StackScopedWrite { .. } => ("component", "Secret is stack-scoped here"),
    };
    let mut d = Diagnostics::new();
    d.attribute_error(
        AttributePath::attr(attr),
        summary,
        sentence(&err.to_string()),
    );
    d
}

/// Ends a message with a full stop unless it already ends in punctuation.
pub fn sentence(text: &str) -> String {
    if text.ends_with(['.', '?', '!']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// For a name asked for at stack level that only component instances declare, says which ones,
/// so the fix (set `component`) is obvious.
fn component_hint(ws: &crate::resolve::Workspace, t: &Target) -> Option<String> {
    if t.component.is_some() {
        return None;
    }
    let components = ws.components(&t.stack).ok()?;
    let declaring: Vec<String> = components
        .into_iter()
        .filter(|c| ws.resolve(&t.stack, Some(c), &t.name).is_ok())
        .collect();
    if declaring.is_empty() {
        return None;
    }
    Some(format!(
        "{:?} is declared for component instance(s) {} of this stack: set `component` to read \
         an instance-scoped value.",
        t.name,
        declaring.join(", ")
    ))
}

/// Where to look: the stack and component after provider defaults.
pub struct Target {
    /// Stack asked for.
    pub stack: String,
    /// Component asked for.
    pub component: Option<String>,
    /// Secret name.
    pub name: String,
}

/// Reads the inputs, applying the provider's defaults. `Ok(None)` when something is unknown.
pub fn target(session: &Session, config: &Value) -> Result<Option<Target>, Diagnostics> {
    if ["name", "stack", "component"]
        .iter()
        .any(|a| config.attr(a).is_some_and(Value::is_unknown))
    {
        return Ok(None);
    }
    let Some(name) = string_attr(config, "name") else {
        let mut d = Diagnostics::new();
        d.attribute_error(
            AttributePath::attr("name"),
            "Missing name",
            "`name` is required.",
        );
        return Err(d);
    };
    let Some(stack) = string_attr(config, "stack").or_else(|| session.default_stack.clone()) else {
        let mut d = Diagnostics::new();
        d.attribute_error(
            AttributePath::attr("stack"),
            "No stack",
            "Set `stack` here, or a default `stack` in the provider block.",
        );
        return Err(d);
    };
    let component = string_attr(config, "component").or_else(|| session.default_component.clone());
    Ok(Some(Target {
        stack,
        component,
        name,
    }))
}

/// Resolves the declaration for a target.
pub fn resolve(session: &Session, t: &Target) -> Result<Option<ResolvedSecret>, Diagnostics> {
    let Some(ws) = &session.workspace else {
        return Ok(None);
    };
    ws.resolve(&t.stack, t.component.as_deref(), &t.name)
        .map(Some)
        .map_err(|e| {
            let mut d = resolve_diagnostic(&e);
            if let (ResolveError::Undeclared { .. }, Some(hint)) = (&e, component_hint(ws, t)) {
                for diag in &mut d.0 {
                    diag.detail = format!("{}\n\n{hint}", diag.detail);
                }
            }
            d
        })
}

/// Reads the secret a configuration names. Shared by the data source and the ephemeral resource.
pub async fn read(session: &Session, config: &Value, caps: ClientCapabilities) -> ReadResponse {
    let mut resp = ReadResponse::default();
    let not_yet = |resp: &mut ReadResponse, why: Deferred| {
        if caps.deferral_allowed {
            resp.deferred = Some(why);
        } else {
            resp.state = Some(unknown_result(config));
        }
    };
    let target = match target(session, config) {
        Ok(Some(t)) => t,
        Ok(None) => {
            not_yet(&mut resp, Deferred::ResourceConfigUnknown);
            return resp;
        }
        Err(d) => {
            resp.diagnostics = d;
            return resp;
        }
    };
    let resolved = match resolve(session, &target) {
        Ok(Some(r)) => r,
        Ok(None) => {
            not_yet(&mut resp, Deferred::ProviderConfigUnknown);
            return resp;
        }
        Err(d) => {
            resp.diagnostics = d;
            return resp;
        }
    };
    let Some(ws) = session.workspace.as_deref() else {
        return resp;
    };
    let store_name = resolved.backend.name().to_owned();
    log::debug!(
        "reading secret {} for stack {} component {} ({} scope) from {} at {}",
        resolved.name,
        resolved.stack,
        resolved.component.as_deref().unwrap_or("-"),
        resolved.scope,
        store_name,
        resolved.location
    );
    let store = match session.backends.get(ws, &resolved).await {
        Ok(s) => s,
        Err(e) => {
            resp.diagnostics.error(
                format!("Cannot open store {store_name:?}"),
                sentence(&format!("Secret {:?}: {e}", resolved.name)),
            );
            return resp;
        }
    };
    use crate::store::SecretStore;
    session
        .backends
        .prefetch_neighbours(ws, &resolved, &store)
        .await;
    let value = match store.read(&resolved.location).await {
        Ok(Some(v)) => v.value,
        Ok(None) => {
            resp.diagnostics.attribute_error(
                AttributePath::attr("name"),
                "Secret has no value",
                format!(
                    "Secret {:?} is declared for {} ({} scope) but {store_name:?} holds no value \
                     for it at {}. Set it first (for example with `atmos secret set` or an \
                     `atmos_secret_value` resource).",
                    resolved.name,
                    place(&resolved),
                    resolved.scope,
                    resolved.location
                ),
            );
            return resp;
        }
        Err(e) => {
            resp.diagnostics.attribute_error(
                AttributePath::attr("name"),
                "Reading the secret failed",
                sentence(&format!(
                    "Secret {:?} from {store_name:?}: {e}",
                    resolved.name
                )),
            );
            return resp;
        }
    };
    let mut attrs = match config {
        Value::Object(a) => a.clone(),
        _ => BTreeMap::new(),
    };
    attrs.insert("value".into(), Value::String(value.expose().to_owned()));
    attrs.insert("scope".into(), Value::String(resolved.scope.to_string()));
    attrs.insert("store".into(), Value::String(store_name));
    attrs.insert(
        "description".into(),
        resolved
            .description
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    resp.state = Some(Value::Object(attrs));
    resp
}

fn place(r: &ResolvedSecret) -> String {
    match &r.component {
        Some(c) => format!("component {c:?} of stack {:?}", r.stack),
        None => format!("stack {:?}", r.stack),
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn sentence_adds_one_full_stop() {
        assert_eq!(sentence("stack \"x\" not found"), "stack \"x\" not found.");
        assert_eq!(sentence("did you mean \"prod\"?"), "did you mean \"prod\"?");
        assert_eq!(sentence("done."), "done.");
    }
}
