//! Declarations (`secrets.vars.<NAME>`) and their scopes.
//!
//! Position decides the default scope: the top level of a stack manifest gives **stack** scope,
//! a component instance (directly, through `metadata.inherits`, or through `overrides`) gives
//! **instance** scope, and `scope: global` is allowed anywhere. Any other explicit `scope` that
//! contradicts the position is an error.
//!
//! Layers merge field by field, narrowest last: the stack level, then the component chain
//! (bases in `inherits` order, the instance, then `overrides`). Re-declaring a stack secret under
//! a component pulls it down to instance scope for that component only; the component's entry
//! may be as short as `NAME: {}`, keeping the description and backend of the stack entry. Two
//! rules keep the merge honest: `scope` is never carried from the stack level into a component
//! (that would make every pull-down a conflict), and a narrower entry that names a backend
//! (`store` or `sops`) replaces the wider one's backend rather than merging into "both".

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::error::{ConfigError, Origin};
use super::manifest::{ORIGIN_KEY, deep_merge, get_path};

/// How widely one value is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One value per (stack, component instance).
    Instance,
    /// One value per stack.
    Stack,
    /// One value for every stack.
    Global,
}

impl Scope {
    /// The spelling used in YAML and in the provider's `scope` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Instance => "instance",
            Scope::Stack => "stack",
            Scope::Global => "global",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a declaration is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// At the top level of a stack manifest.
    Stack,
    /// Under a component instance (or its bases, or `overrides`).
    Instance,
}

/// Which backend a declaration names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `store: NAME` (a `secret: true` store of `atmos.yaml`).
    Store(String),
    /// `sops: NAME` (a SOPS provider of `secrets.providers`).
    Sops(String),
}

/// One validated declaration, after layers are merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    /// The secret's name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `required` (default false).
    pub required: bool,
    /// `store` or `sops`.
    pub target: Target,
    /// The scope its position and `scope` give.
    pub scope: Scope,
    /// `reference`, when non-empty: the key used instead of the name.
    pub reference: Option<String>,
    /// Where the narrowest layer that declared it was written.
    pub origin: Origin,
}

/// The declaration keys we know; others get a warning.
const KNOWN_FIELDS: &[&str] = &[
    "description",
    "required",
    "store",
    "sops",
    "scope",
    "reference",
];

/// The `secrets.vars` map of a section, as (name, declaration map) pairs.
pub fn raw_vars<'a>(
    file: &Path,
    section: &'a Value,
    at: &str,
) -> Result<Vec<(&'a str, &'a Mapping)>, ConfigError> {
    let Some(vars) = get_path(section, &["secrets", "vars"]) else {
        return Ok(Vec::new());
    };
    let at = if at.is_empty() {
        "secrets.vars".to_string()
    } else {
        format!("{at}.secrets.vars")
    };
    let map = match vars {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::invalid(
                file,
                at,
                "must be a map of secret names",
            ));
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(name) = k.as_str() else {
            return Err(ConfigError::invalid(
                file,
                &at,
                "secret names must be strings",
            ));
        };
        let Value::Mapping(decl) = v else {
            return Err(ConfigError::invalid(
                file,
                format!("{at}.{name}"),
                "must be a map of {description, required, store | sops, scope, reference}",
            ));
        };
        out.push((name, decl));
    }
    Ok(out)
}

/// Merges a narrower declaration over a wider one (see the module docs for the two rules).
pub fn overlay(wider: &Mapping, narrower: &Mapping, across_levels: bool) -> Mapping {
    let mut base = wider.clone();
    if across_levels {
        base.remove("scope");
    }
    if narrower.contains_key("store") || narrower.contains_key("sops") {
        base.remove("store");
        base.remove("sops");
    }
    let mut merged = Value::Mapping(base);
    deep_merge(&mut merged, &Value::Mapping(narrower.clone()));
    match merged {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    }
}

/// A field of a small map. Declarations have a handful of keys: a linear scan beats hashing a
/// YAML key, and loading touches every declaration of every stack.
pub fn field<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn string_field(
    decl: &Mapping,
    key: &str,
    file: &Path,
    at: &str,
) -> Result<Option<String>, ConfigError> {
    match field(decl, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::invalid(
            file,
            format!("{at}.{key}"),
            "must be a string",
        )),
    }
}

/// Validates a merged declaration map. `attr` is its attribute path (for messages); the file is
/// the one the hidden origin entry names, else `fallback_file`.
pub fn finish(
    name: &str,
    decl: &Mapping,
    position: Position,
    attr: &str,
    fallback_file: &Path,
    warnings: &mut Vec<String>,
) -> Result<Declaration, ConfigError> {
    let file = field(decl, ORIGIN_KEY)
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .unwrap_or_else(|| fallback_file.to_path_buf());
    let f = file.as_path();
    for key in decl.keys() {
        let k = key.as_str().unwrap_or_default();
        if k != ORIGIN_KEY && !KNOWN_FIELDS.contains(&k) {
            warnings.push(format!(
                "{}: {attr}.{k}: unknown declaration field; known: {}",
                f.display(),
                KNOWN_FIELDS.join(", ")
            ));
        }
    }
    let description = string_field(decl, "description", f, attr)?;
    let required = match field(decl, "required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ConfigError::invalid(
                f,
                format!("{attr}.required"),
                "must be true or false",
            ));
        }
    };
    let target = match (
        string_field(decl, "store", f, attr)?,
        string_field(decl, "sops", f, attr)?,
    ) {
        (Some(s), None) => Target::Store(s),
        (None, Some(p)) => Target::Sops(p),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                f,
                attr,
                "names both `store` and `sops`; a declaration needs exactly one",
            ));
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                f,
                attr,
                "names neither `store` nor `sops`; a declaration needs exactly one",
            ));
        }
    };
    let explicit = match string_field(decl, "scope", f, attr)?.as_deref() {
        None => None,
        Some("instance") => Some(Scope::Instance),
        Some("stack") => Some(Scope::Stack),
        Some("global") => Some(Scope::Global),
        Some(other) => {
            return Err(ConfigError::invalid(
                f,
                format!("{attr}.scope"),
                format!("unknown scope {other:?}; use instance, stack or global"),
            ));
        }
    };
    let scope = match (position, explicit) {
        (_, Some(Scope::Global)) => Scope::Global,
        (Position::Stack, None | Some(Scope::Stack)) => Scope::Stack,
        (Position::Instance, None | Some(Scope::Instance)) => Scope::Instance,
        (Position::Stack, Some(Scope::Instance)) => {
            return Err(ConfigError::invalid(
                f,
                format!("{attr}.scope"),
                "scope: instance at the top level of a stack manifest; declare it under components.terraform.<instance>.secrets.vars instead",
            ));
        }
        (Position::Instance, Some(Scope::Stack)) => {
            return Err(ConfigError::invalid(
                f,
                format!("{attr}.scope"),
                "scope: stack under a component; an instance-declared secret is never stack-scoped (declare it at the top level of the stack manifest instead)",
            ));
        }
    };
    let reference = string_field(decl, "reference", f, attr)?.filter(|r| !r.is_empty());
    Ok(Declaration {
        name: name.to_string(),
        description,
        required,
        target,
        scope,
        reference,
        origin: Origin {
            file,
            path: attr.to_string(),
        },
    })
}
