//! Building a [`Workspace`](super::Workspace): reading and naming the stacks, resolving every
//! declaration of every stack (one worker per core), then one ordered pass over every location
//! to find collisions.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use super::config::{self, AtmosConfig, SopsProvider};
use super::declare::{self, Declaration, Position, Scope, Target};
use super::error::{self, ConfigError};
use super::manifest::{ManifestLoader, deep_merge, get, get_path};
use super::naming::{self, Coordinate, StoreKind};
use super::stack;
use super::{Backend, InstanceView, ProviderSet, ResolvedSecret, StackView};
use crate::store::Location;

/// One native location, as compared for collisions: the store (by index in `stores:`) and its
/// collision key, or a SOPS file and key (SOPS files are one namespace whatever the provider).
/// Borrowed from the resolved secret, so checking tens of thousands of locations allocates
/// only for Azure's case folding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot<'a> {
    Store(usize, Cow<'a, str>),
    Sops(&'a std::ffi::OsStr, &'a str),
}

/// A rendered `spec.file`: (template, stack, component, scope).
type FileKey = (String, Option<String>, Option<String>, Scope);

/// The state of one load.
struct Builder<'c> {
    config: &'c AtmosConfig,
    warnings: Vec<String>,
    errors: Vec<ConfigError>,
    /// Parsed providers, shared between stacks whose merged definition is the same.
    providers: HashMap<(String, Value), Arc<SopsProvider>>,
    /// The providers of `atmos.yaml` alone, parsed once.
    base_providers: Option<Arc<ProviderSet>>,
    /// Rendered SOPS file templates.
    files: HashMap<FileKey, Result<PathBuf, String>>,
}

/// A top-level manifest, read and named.
pub(super) struct PendingStack {
    name: String,
    manifest: String,
    file: PathBuf,
    doc: Arc<Value>,
}

/// What one worker resolved.
pub(super) struct BuiltPart {
    pub(super) views: Vec<StackView>,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<String>,
    pub(super) providers: Vec<Arc<SopsProvider>>,
}

/// Resolves a share of the stacks; each merged document is dropped by the worker that used it.
pub(super) fn build_part(config: &AtmosConfig, part: Vec<PendingStack>) -> BuiltPart {
    let mut b = Builder::new(config);
    let views: Vec<StackView> = part
        .into_iter()
        .filter_map(|p| b.build_stack(p.name, p.manifest, p.file, &p.doc))
        .collect();
    BuiltPart {
        views,
        errors: b.errors,
        warnings: b.warnings,
        providers: b.providers.into_values().collect(),
    }
}

/// Reads and names every top-level manifest.
pub(super) fn read_stacks(
    config: &AtmosConfig,
    files: Vec<PathBuf>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Vec<PendingStack> {
    let mut loader = ManifestLoader::new(config.stacks.base_path.clone());
    loader.preparse();
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let doc = match loader.load_top(&file) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let name = match stack::stack_name(
            &config.stacks,
            &config.file,
            &file,
            loader.own_name(&file),
            &doc,
        ) {
            Ok(n) => n,
            Err(stack::Unnamed::Error(e)) => {
                errors.push(e);
                continue;
            }
            Err(stack::Unnamed::MissingVar(why)) => {
                let has_content = get_path(&doc, &["components", "terraform"])
                    .and_then(Value::as_mapping)
                    .is_some_and(|m| !m.is_empty())
                    || get_path(&doc, &["secrets", "vars"])
                        .and_then(Value::as_mapping)
                        .is_some_and(|m| !m.is_empty());
                if has_content {
                    errors.push(ConfigError::invalid(
                        &file,
                        "vars",
                        format!("cannot name this stack: {why}"),
                    ));
                } else {
                    warnings.push(format!(
                        "{}: not a stack (no components or declarations, and {why})",
                        file.display()
                    ));
                }
                continue;
            }
        };
        if let Err(m) = naming::check_path_part("stack name", &name) {
            errors.push(ConfigError::invalid(&file, "name", m));
            continue;
        }
        let manifest = stack::manifest_name(&config.stacks, &file);
        out.push(PendingStack {
            name,
            manifest,
            file,
            doc,
        });
    }
    out
}

/// The collision slot of a resolved secret.
fn slot<'a>(config: &AtmosConfig, secret: &'a ResolvedSecret) -> Option<Slot<'a>> {
    match (&secret.backend, &secret.location) {
        (Backend::Store { name, kind }, Location::Named(native)) => {
            let index = config.stores.get_index_of(name)?;
            Some(Slot::Store(
                index,
                match kind {
                    StoreKind::AzureKeyVault => Cow::Owned(naming::collision_key(*kind, native)),
                    _ => Cow::Borrowed(native.as_str()),
                },
            ))
        }
        (Backend::Sops { .. }, Location::SopsKey { file, key }) => {
            Some(Slot::Sops(file.as_os_str(), key.as_str()))
        }
        _ => None,
    }
}

/// Two different coordinates at one native location, each pair reported once, in stack order.
pub(super) fn collisions(config: &AtmosConfig, stacks: &[StackView]) -> Vec<ConfigError> {
    let mut first_at: HashMap<Slot, &Arc<ResolvedSecret>> = HashMap::new();
    let mut reported: HashSet<(Slot, &Coordinate)> = HashSet::new();
    let mut errors = Vec::new();
    for view in stacks {
        // A stack secret seen from a component is the same `Arc`: check it once.
        let own = view.components.values().flat_map(|i| {
            i.secrets
                .iter()
                .filter(|(n, s)| !view.secrets.get(*n).is_some_and(|t| Arc::ptr_eq(s, t)))
                .map(|(_, s)| s)
        });
        for secret in view.secrets.values().chain(own) {
            let Some(slot) = slot(config, secret) else {
                continue;
            };
            match first_at.get(&slot) {
                None => {
                    first_at.insert(slot, secret);
                }
                Some(first) if Arc::ptr_eq(first, secret) => {}
                Some(first) if first.coordinate == secret.coordinate => {}
                Some(first) => {
                    let first = Arc::clone(first);
                    let backend = match &slot {
                        Slot::Store(..) => secret.backend.to_string(),
                        Slot::Sops(..) => "SOPS files".to_string(),
                    };
                    if reported.insert((slot, &secret.coordinate)) {
                        errors.push(ConfigError::Collision(Box::new(error::Collision {
                            backend,
                            location: secret.location.to_string(),
                            first: first.origin.clone(),
                            first_coordinate: first.coordinate.to_string(),
                            second: secret.origin.clone(),
                            second_coordinate: secret.coordinate.to_string(),
                        })));
                    }
                }
            }
        }
    }
    errors
}

/// `secrets.providers` of a section, merged over `base` name by name.
fn merge_providers(base: &Mapping, section: &Value) -> Option<Mapping> {
    let Some(Value::Mapping(own)) = get_path(section, &["secrets", "providers"]) else {
        return None;
    };
    let mut merged = Value::Mapping(base.clone());
    deep_merge(&mut merged, &Value::Mapping(own.clone()));
    match merged {
        Value::Mapping(m) => Some(m),
        _ => None,
    }
}

impl<'c> Builder<'c> {
    fn new(config: &'c AtmosConfig) -> Self {
        Builder {
            config,
            warnings: Vec::new(),
            errors: Vec::new(),
            providers: HashMap::new(),
            base_providers: None,
            files: HashMap::new(),
        }
    }

    fn provider_set(&mut self, raw: &Mapping, file: &Path, at: &str) -> Arc<ProviderSet> {
        let mut set = ProviderSet::new();
        for (k, v) in raw {
            let Some(name) = k.as_str() else { continue };
            let key = (name.to_string(), v.clone());
            if let Some(p) = self.providers.get(&key) {
                set.insert(name.to_string(), p.clone());
                continue;
            }
            match config::parse_sops_provider(
                file,
                &format!("{at}.{name}"),
                name,
                v,
                &self.config.base_path,
                &mut self.warnings,
            ) {
                Ok(Some(p)) => {
                    let p = Arc::new(p);
                    self.providers.insert(key, p.clone());
                    set.insert(name.to_string(), p);
                }
                Ok(None) => {}
                Err(e) => self.errors.push(e),
            }
        }
        Arc::new(set)
    }

    fn build_stack(
        &mut self,
        name: String,
        manifest: String,
        file: PathBuf,
        doc: &Value,
    ) -> Option<StackView> {
        let f = file.as_path();
        let errors_before = self.errors.len();
        // Providers: atmos.yaml, then the stack.
        let (stack_raw, stack_providers) = match merge_providers(&self.config.providers, doc) {
            Some(raw) => {
                let set = self.provider_set(&raw, f, "secrets.providers");
                (Cow::Owned(raw), set)
            }
            None => {
                // Most stacks define no providers of their own: share the atmos.yaml set.
                let set = match &self.base_providers {
                    Some(set) => set.clone(),
                    None => {
                        let set = self.provider_set(
                            &self.config.providers,
                            &self.config.file,
                            "secrets.providers",
                        );
                        self.base_providers = Some(set.clone());
                        set
                    }
                };
                (Cow::Borrowed(&self.config.providers), set)
            }
        };

        // Stack level.
        let stack_decls = match declare::raw_vars(f, doc, "") {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                Vec::new()
            }
        };
        let stack_raw_decls: HashMap<&str, &Mapping> = stack_decls.iter().copied().collect();
        let mut stack_secrets = BTreeMap::new();
        for (n, m) in &stack_decls {
            let attr = format!("secrets.vars.{n}");
            let decl = declare::finish(n, m, Position::Stack, &attr, f, &mut self.warnings);
            if let Some(s) = decl.ok_or_push(&mut self.errors).and_then(|d| {
                self.locate(&d, &name, None, &stack_providers)
                    .ok_or_push(&mut self.errors)
            }) {
                stack_secrets.insert(n.to_string(), s);
            }
        }

        // Component instances.
        let instances = match stack::instances(f, doc) {
            Ok(i) => i,
            Err(e) => {
                self.errors.push(e);
                Vec::new()
            }
        };
        let overrides: Vec<(&str, &Value)> = [
            ("overrides", get(doc, "overrides")),
            (
                "terraform.overrides",
                get_path(doc, &["terraform", "overrides"]),
            ),
        ]
        .into_iter()
        .filter_map(|(at, v)| v.map(|v| (at, v)))
        .collect();
        let mut components = BTreeMap::new();
        for inst in &instances {
            let Some(chain) = stack::chain(f, &instances, &inst.name).ok_or_push(&mut self.errors)
            else {
                continue;
            };
            if !inst.is_abstract
                && let Err(m) = naming::check_path_part("component instance", &inst.name)
            {
                self.errors.push(ConfigError::invalid(
                    f,
                    format!("components.terraform.{}", inst.name),
                    m,
                ));
                continue;
            }
            // Providers: the stack's, then each member of the chain.
            let mut raw: Option<Mapping> = None;
            for member in &chain {
                if let Some(m) = merge_providers(raw.as_ref().unwrap_or(&stack_raw), member.section)
                {
                    raw = Some(m);
                }
            }
            let providers = match raw {
                Some(raw) => self.provider_set(
                    &raw,
                    f,
                    &format!("components.terraform.{}.secrets.providers", inst.name),
                ),
                None => stack_providers.clone(),
            };
            // Declarations: the chain, then overrides, merged field by field.
            let mut layer: IndexMap<&str, (Cow<Mapping>, String)> = IndexMap::new();
            let mut sections: Vec<(String, &Value)> = chain
                .iter()
                .map(|m| (format!("components.terraform.{}", m.name), m.section))
                .collect();
            sections.extend(overrides.iter().map(|(at, v)| (at.to_string(), *v)));
            for (at, section) in &sections {
                let Some(vars) = declare::raw_vars(f, section, at).ok_or_push(&mut self.errors)
                else {
                    continue;
                };
                for (n, m) in vars {
                    let attr = format!("{at}.secrets.vars.{n}");
                    match layer.get_mut(n) {
                        Some((existing, existing_attr)) => {
                            *existing = Cow::Owned(declare::overlay(existing, m, false));
                            *existing_attr = attr;
                        }
                        None => {
                            layer.insert(n, (Cow::Borrowed(m), attr));
                        }
                    }
                }
            }
            if inst.is_abstract {
                // An abstract base may hold partial declarations (a description for a backend
                // its instances choose); they are checked in every instance that inherits them.
                components.insert(
                    inst.name.clone(),
                    InstanceView {
                        is_abstract: true,
                        secrets: BTreeMap::new(),
                        providers,
                    },
                );
                continue;
            }
            let mut visible = stack_secrets.clone();
            for (n, (m, attr)) in &layer {
                let merged = match stack_raw_decls.get(n) {
                    Some(wider) => Cow::Owned(declare::overlay(wider, m, true)),
                    None => Cow::Borrowed(&**m),
                };
                let Some(decl) =
                    declare::finish(n, &merged, Position::Instance, attr, f, &mut self.warnings)
                        .ok_or_push(&mut self.errors)
                else {
                    continue;
                };
                if let Some(s) = self
                    .locate(&decl, &name, Some(&inst.name), &providers)
                    .ok_or_push(&mut self.errors)
                {
                    visible.insert(n.to_string(), s);
                }
            }
            components.insert(
                inst.name.clone(),
                InstanceView {
                    is_abstract: false,
                    secrets: visible,
                    providers,
                },
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(StackView {
            name,
            manifest,
            file,
            secrets: stack_secrets,
            providers: stack_providers,
            components,
        })
    }

    /// Computes the coordinate, backend and location of a declaration seen from
    /// (`stack`, `component`).
    fn locate(
        &mut self,
        decl: &Declaration,
        stack: &str,
        component: Option<&str>,
        providers: &ProviderSet,
    ) -> Result<Arc<ResolvedSecret>, ConfigError> {
        let bad = |m: String| ConfigError::invalid(&decl.origin.file, &decl.origin.path, m);
        let key = decl.reference.clone().unwrap_or_else(|| decl.name.clone());
        let what = if decl.reference.is_some() {
            "reference"
        } else {
            "secret name"
        };
        naming::check_key(what, &key).map_err(bad)?;
        let coordinate = match decl.scope {
            Scope::Instance => Coordinate {
                stack: Some(stack.to_string()),
                component: component.map(str::to_string),
                key,
            },
            Scope::Stack => Coordinate {
                stack: Some(stack.to_string()),
                component: None,
                key,
            },
            Scope::Global => Coordinate {
                stack: None,
                component: None,
                key,
            },
        };
        let (backend, location, sops) = match &decl.target {
            Target::Store(store_name) => {
                let Some(store) = self.config.stores.get(store_name) else {
                    let secret_stores: Vec<&str> = self
                        .config
                        .stores
                        .values()
                        .filter(|s| s.secret)
                        .map(|s| s.name.as_str())
                        .collect();
                    let near = error::closest(store_name, secret_stores.iter().copied());
                    return Err(bad(format!(
                        "store {store_name:?} is not defined in {}; secret stores: {}{}",
                        self.config.file.display(),
                        if secret_stores.is_empty() {
                            "(none)".to_string()
                        } else {
                            secret_stores.join(", ")
                        },
                        near.first()
                            .map(|n| format!("; did you mean {n:?}?"))
                            .unwrap_or_default()
                    )));
                };
                if !store.secret {
                    return Err(bad(format!(
                        "store {store_name:?} is not a secret store; set `secret: true` on stores.{store_name} in {} to hold declared secrets",
                        self.config.file.display()
                    )));
                }
                let native = naming::native_name(store.kind, &store.naming, &coordinate);
                naming::check_native_name(store.kind, &native)
                    .map_err(|m| bad(format!("{m} (coordinate {coordinate})")))?;
                (
                    Backend::Store {
                        name: store.name.clone(),
                        kind: store.kind,
                    },
                    Location::Named(native),
                    None,
                )
            }
            Target::Sops(provider_name) => {
                let Some(provider) = providers.get(provider_name) else {
                    let names: Vec<&str> = providers.keys().map(String::as_str).collect();
                    let near = error::closest(provider_name, names.iter().copied());
                    return Err(bad(format!(
                        "SOPS provider {provider_name:?} is not defined here (secrets.providers with kind: sops/age); defined: {}{}",
                        if names.is_empty() {
                            "(none)".to_string()
                        } else {
                            names.join(", ")
                        },
                        near.first()
                            .map(|n| format!("; did you mean {n:?}?"))
                            .unwrap_or_default()
                    )));
                };
                let file = self
                    .sops_file(provider, &coordinate, decl.scope)
                    .map_err(bad)?;
                (
                    Backend::Sops {
                        provider: provider_name.clone(),
                    },
                    Location::SopsKey {
                        file,
                        key: coordinate.key.clone(),
                    },
                    Some(provider.clone()),
                )
            }
        };
        let secret = Arc::new(ResolvedSecret {
            name: decl.name.clone(),
            stack: stack.to_string(),
            component: component.map(str::to_string),
            scope: decl.scope,
            description: decl.description.clone(),
            required: decl.required,
            backend,
            coordinate,
            location,
            sops,
            origin: decl.origin.clone(),
        });
        Ok(secret)
    }

    /// The SOPS file of a coordinate: `spec.file` rendered (rooted at the base path, and kept
    /// inside it), else `<path>/<stack>[.<component>].enc.yaml` (kept inside `path`).
    fn sops_file(
        &mut self,
        provider: &SopsProvider,
        coord: &Coordinate,
        scope: Scope,
    ) -> Result<PathBuf, String> {
        let Some(template) = &provider.file_template else {
            let file = naming::default_sops_file(
                &provider.base_dir,
                coord.stack.as_deref(),
                coord.component.as_deref(),
            )
            .ok_or_else(|| {
                format!(
                    "scope: global on SOPS provider {:?} needs spec.file (a template for the file of each scope); the default file names need a stack",
                    provider.name
                )
            })?;
            if !naming::stays_inside(&provider.base_dir, &file) {
                return Err(format!(
                    "SOPS file {} would leave {}",
                    file.display(),
                    provider.base_dir.display()
                ));
            }
            return Ok(file);
        };
        let cache_key = (
            template.clone(),
            coord.stack.clone(),
            coord.component.clone(),
            scope,
        );
        if let Some(done) = self.files.get(&cache_key) {
            return done.clone();
        }
        let base = self.config.base_path.clone();
        let result = (|| {
            let ctx: HashMap<String, gtmpl::Value> = [
                ("stack", coord.stack.clone().unwrap_or_default()),
                ("component", coord.component.clone().unwrap_or_default()),
                ("scope", scope.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), gtmpl::Value::String(v)))
            .collect();
            let rendered = config::render_template(template, ctx)
                .map_err(|m| format!("SOPS provider {:?} spec.file: {m}", provider.name))?;
            let rendered = rendered.trim();
            if rendered.is_empty() || rendered.chars().any(char::is_control) {
                return Err(format!(
                    "SOPS provider {:?} spec.file renders to an empty or invalid path for {coord}",
                    provider.name
                ));
            }
            let file = config::rooted(&base, rendered);
            if Path::new(rendered)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
                || !naming::stays_inside(&base, &file)
            {
                return Err(format!(
                    "SOPS provider {:?} spec.file renders {rendered:?} for {coord}, which leaves the base path {}",
                    provider.name,
                    base.display()
                ));
            }
            Ok(file)
        })();
        self.files.insert(cache_key, result.clone());
        result
    }
}

/// `Result` -> `Option`, keeping the error in a list (loading reports every problem at once).
trait OkOrPush<T> {
    fn ok_or_push(self, errors: &mut Vec<ConfigError>) -> Option<T>;
}

impl<T> OkOrPush<T> for Result<T, ConfigError> {
    fn ok_or_push(self, errors: &mut Vec<ConfigError>) -> Option<T> {
        match self {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }
}
