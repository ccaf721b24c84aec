//! Stacks: which manifests are stacks, what they are called, and their component instances.
//!
//! A top-level manifest is a file under `stacks.base_path` matched by `included_paths` and not by
//! `excluded_paths`. Its name is, in order: its own `name:`, `stacks.name_template` (a Go
//! template over the stack's merged `vars` and `settings`), `stacks.name_pattern` (tokens
//! `{namespace}`, `{tenant}`, `{environment}`, `{stage}` from `vars`), else its path relative to
//! `stacks.base_path` without extension.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_yaml_ng::Value;

use super::config::{StacksConfig, render_template, to_template_value};
use super::error::ConfigError;
use super::manifest::{get, get_path, normalize};

fn globset(patterns: &[String], file: &Path, attr: &str) -> Result<GlobSet, ConfigError> {
    let mut b = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = GlobBuilder::new(p.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|e| ConfigError::invalid(file, format!("{attr}[{i}]"), e.to_string()))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| ConfigError::invalid(file, attr, e.to_string()))
}

/// The top-level stack manifests, sorted by path. `config_file` is named in errors.
pub fn discover(cfg: &StacksConfig, config_file: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let include = globset(&cfg.included_paths, config_file, "stacks.included_paths")?;
    let exclude = globset(&cfg.excluded_paths, config_file, "stacks.excluded_paths")?;
    if !cfg.base_path.is_dir() {
        return Err(ConfigError::invalid(
            config_file,
            "stacks.base_path",
            format!("{} is not a directory", cfg.base_path.display()),
        ));
    }
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(&cfg.base_path)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| normalize(e.path()))
        .filter(|p| {
            let Ok(rel) = p.strip_prefix(&cfg.base_path) else {
                return false;
            };
            let is_yaml = matches!(
                rel.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            is_yaml && include.is_match(rel) && !exclude.is_match(rel)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The manifest path of `file` relative to `stacks.base_path`, without extension, with `/`.
pub fn manifest_name(cfg: &StacksConfig, file: &Path) -> String {
    let rel = file.strip_prefix(&cfg.base_path).unwrap_or(file);
    let rel = rel.with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

const PATTERN_TOKENS: [&str; 4] = ["namespace", "tenant", "environment", "stage"];

/// Why a manifest has no name.
#[derive(Debug)]
pub enum Unnamed {
    /// The pattern needs a variable this manifest does not set (it is then not a stack, unless
    /// it has components or declarations, which makes it an error).
    MissingVar(String),
    /// The configuration itself is wrong.
    Error(ConfigError),
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_string(&t.value),
        _ => None,
    }
}

/// The logical name of a manifest.
pub fn stack_name(
    cfg: &StacksConfig,
    config_file: &Path,
    file: &Path,
    own_name: Option<&Value>,
    doc: &Value,
) -> Result<String, Unnamed> {
    // `name:` is the manifest's own; an imported file's `name:` must not rename the importer.
    if let Some(v) = own_name {
        return match scalar_string(v) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Unnamed::Error(ConfigError::invalid(
                file,
                "name",
                "must be a non-empty string",
            ))),
        };
    }
    let vars = get(doc, "vars");
    if let Some(template) = &cfg.name_template {
        let mut ctx = HashMap::new();
        for key in ["vars", "settings", "env"] {
            let v = get(doc, key)
                .map(to_template_value)
                .unwrap_or_else(|| gtmpl::Value::Map(HashMap::new()));
            ctx.insert(key.to_string(), v);
        }
        return match render_template(template, ctx) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Ok(_) => Err(Unnamed::MissingVar(format!(
                "stacks.name_template {template:?} renders empty"
            ))),
            Err(m) if m.contains("not set") => Err(Unnamed::MissingVar(m)),
            Err(m) => Err(Unnamed::Error(ConfigError::invalid(
                config_file,
                "stacks.name_template",
                format!("{m} (Go template syntax; Sprig functions are not available)"),
            ))),
        };
    }
    if let Some(pattern) = &cfg.name_pattern {
        let mut out = String::new();
        let mut rest = pattern.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                return Err(Unnamed::Error(ConfigError::invalid(
                    config_file,
                    "stacks.name_pattern",
                    format!("unclosed '{{' in {pattern:?}"),
                )));
            };
            let token = &after[..end];
            if !PATTERN_TOKENS.contains(&token) {
                return Err(Unnamed::Error(ConfigError::invalid(
                    config_file,
                    "stacks.name_pattern",
                    format!(
                        "unknown token {{{token}}} in {pattern:?}; known: {{namespace}}, {{tenant}}, {{environment}}, {{stage}}"
                    ),
                )));
            }
            match vars.and_then(|v| get(v, token)).and_then(scalar_string) {
                Some(s) if !s.is_empty() => out.push_str(&s),
                _ => {
                    return Err(Unnamed::MissingVar(format!(
                        "stacks.name_pattern {pattern:?} needs vars.{token}"
                    )));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        return Ok(out);
    }
    Ok(manifest_name(cfg, file))
}

/// One `components.terraform.<instance>` entry, with what `metadata` says about it.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    /// The instance name (its key).
    pub name: String,
    /// `metadata.type: abstract`.
    pub is_abstract: bool,
    /// `metadata.inherits`, in order.
    pub inherits: Vec<String>,
    /// The instance's own section.
    pub section: &'a Value,
}

/// The component instances of a merged stack document, in document order.
pub fn instances<'a>(file: &Path, doc: &'a Value) -> Result<Vec<Instance<'a>>, ConfigError> {
    let Some(section) = get_path(doc, &["components", "terraform"]) else {
        return Ok(Vec::new());
    };
    let map = match section {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::invalid(
                file,
                "components.terraform",
                "must be a map of component instances",
            ));
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(name) = k.as_str() else {
            return Err(ConfigError::invalid(
                file,
                "components.terraform",
                "instance names must be strings",
            ));
        };
        let at = format!("components.terraform.{name}");
        if !(v.is_mapping() || v.is_null()) {
            return Err(ConfigError::invalid(file, at, "must be a map"));
        }
        let metadata = get(v, "metadata");
        let is_abstract = match metadata.and_then(|m| get(m, "type")) {
            None | Some(Value::Null) => false,
            Some(Value::String(t)) if t == "abstract" => true,
            Some(Value::String(t)) if t == "real" => false,
            Some(_) => {
                return Err(ConfigError::invalid(
                    file,
                    format!("{at}.metadata.type"),
                    "must be `abstract` or `real`",
                ));
            }
        };
        if let Some(c) = metadata.and_then(|m| get(m, "component"))
            && !(c.is_string() || c.is_null())
        {
            return Err(ConfigError::invalid(
                file,
                format!("{at}.metadata.component"),
                "must be a string (the Terraform component folder)",
            ));
        }
        let inherits = match metadata.and_then(|m| get(m, "inherits")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => {
                let mut names = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Some(s) = item.as_str() else {
                        return Err(ConfigError::invalid(
                            file,
                            format!("{at}.metadata.inherits[{i}]"),
                            "must be a component instance name",
                        ));
                    };
                    names.push(s.to_string());
                }
                names
            }
            Some(_) => {
                return Err(ConfigError::invalid(
                    file,
                    format!("{at}.metadata.inherits"),
                    "must be a list of component instance names",
                ));
            }
        };
        out.push(Instance {
            name: name.to_string(),
            is_abstract,
            inherits,
            section: v,
        });
    }
    Ok(out)
}

/// The inheritance chain of `name`: every base (depth first, each base's own bases before it,
/// in `inherits` order, first occurrence kept), ending with `name` itself.
pub fn chain<'a>(
    file: &Path,
    all: &'a [Instance<'a>],
    name: &str,
) -> Result<Vec<&'a Instance<'a>>, ConfigError> {
    fn visit<'a>(
        file: &Path,
        all: &'a [Instance<'a>],
        name: &str,
        path: &mut Vec<String>,
        out: &mut Vec<&'a Instance<'a>>,
    ) -> Result<(), ConfigError> {
        if path.iter().any(|p| p == name) {
            path.push(name.to_string());
            return Err(ConfigError::invalid(
                file,
                format!("components.terraform.{}.metadata.inherits", path[0]),
                format!("inheritance cycle: {}", path.join(" -> ")),
            ));
        }
        let Some(inst) = all.iter().find(|i| i.name == name) else {
            let from = path.last().cloned().unwrap_or_default();
            let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
            let near = super::error::closest(name, names);
            return Err(ConfigError::invalid(
                file,
                format!("components.terraform.{from}.metadata.inherits"),
                format!(
                    "inherits {name:?}, which is not a component instance of this stack{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!("; did you mean {}?", near.join(" or "))
                    }
                ),
            ));
        };
        path.push(name.to_string());
        for base in &inst.inherits {
            visit(file, all, base, path, out)?;
        }
        path.pop();
        if !out.iter().any(|i| i.name == inst.name) {
            out.push(inst);
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(file, all, name, &mut Vec::new(), &mut out)?;
    Ok(out)
}
