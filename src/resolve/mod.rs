//! Atmos configuration, stack manifests, secret declarations, scopes and coordinates.
//!
//! Knows nothing of Terraform or of any SDK; `shared/design/scopes.md` is the contract.
//!
//! Raw YAML is parsed, merged and validated once, in [`Workspace::load`], into a [`Workspace`]
//! that the rest of the program trusts: every declaration visible in every stack and component
//! instance is resolved to its [`Scope`], [`Coordinate`], backend and native
//! [`Location`] up front, so collisions between declarations, names that would escape their
//! directory and scopes a backend cannot hold are configuration errors at load time, never
//! surprises when a value is read. A workspace is immutable afterwards: build it once per
//! provider process, put it in an `Arc`, and let concurrent reads share it.
//!
//! Code map: [`config`] (`atmos.yaml`), [`manifest`] (YAML, imports, deep merge), [`stack`]
//! (stack names, component instances, `inherits`), [`declare`] (declarations and scopes),
//! [`naming`] (coordinates to native names, escape checks), `build` (the load itself: stacks
//! resolved on every core, then one ordered collision pass), [`error`].
//!
//! Choices where the contract leaves room (each is tested in `tests/resolve.rs`):
//! - A re-declaration merges field by field over the wider one (`NAME: {}` under a component
//!   pulls a stack secret down with its description and backend); `scope` never crosses from
//!   the stack level into a component, and a narrower `store`/`sops` replaces the wider backend.
//! - `overrides.secrets.vars` and `terraform.overrides.secrets.vars` apply to every instance of
//!   the stack (instance position).
//! - Abstract instances hold partial declarations; they are validated in the instances that
//!   inherit them.
//! - `secrets.providers` entries of the same name are deep-merged, narrowest last.
//! - `spec.file` is a Go template over `.stack`, `.component` (empty for stack and global
//!   scope) and `.scope`; relative results are rooted at the base path and may not leave it.
//! - Vault names drop the leading `/` Atmos's joiner leaves when `prefix` is empty; Azure names
//!   are compared case-insensitively for collisions (Key Vault names are).

mod build;
pub mod config;
pub mod declare;
pub mod error;
pub mod manifest;
pub mod naming;
pub mod stack;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{AtmosConfig, LoadOptions, SopsProvider, StoreConfig};
pub use declare::{Declaration, Position, Scope, Target};
pub use error::{ConfigError, Origin, ResolveError};
pub use naming::{Coordinate, StoreKind};

use crate::store::Location;
use build::{BuiltPart, PendingStack, build_part, collisions, read_stacks};

/// Which backend holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A `secret: true` store of `atmos.yaml`.
    Store {
        /// The store's name.
        name: String,
        /// Its kind.
        kind: StoreKind,
    },
    /// A SOPS provider of `secrets.providers`.
    Sops {
        /// The provider's name.
        provider: String,
    },
}

impl Backend {
    /// The store's or SOPS provider's name, as written in the configuration.
    pub fn name(&self) -> &str {
        match self {
            Backend::Store { name, .. } => name,
            Backend::Sops { provider } => provider,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Store { name, kind } => write!(f, "store {name:?} ({kind})"),
            Backend::Sops { provider } => write!(f, "SOPS provider {provider:?}"),
        }
    }
}

/// A declared secret as seen from one stack (and component), with where its value lives.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSecret {
    /// The declared name.
    pub name: String,
    /// The stack's logical name.
    pub stack: String,
    /// The component instance it was asked for, if any.
    pub component: Option<String>,
    /// Its scope there.
    pub scope: Scope,
    /// `description`.
    pub description: Option<String>,
    /// `required`.
    pub required: bool,
    /// The backend.
    pub backend: Backend,
    /// The coordinate its scope gives.
    pub coordinate: Coordinate,
    /// The native location in the backend.
    pub location: Location,
    /// The effective SOPS provider, for SOPS-backed secrets.
    pub sops: Option<Arc<SopsProvider>>,
    /// Where the narrowest declaration was written.
    pub origin: Origin,
}

type ProviderSet = BTreeMap<String, Arc<SopsProvider>>;

#[derive(Debug)]
struct InstanceView {
    is_abstract: bool,
    secrets: BTreeMap<String, Arc<ResolvedSecret>>,
    providers: Arc<ProviderSet>,
}

#[derive(Debug)]
struct StackView {
    name: String,
    manifest: String,
    file: PathBuf,
    secrets: BTreeMap<String, Arc<ResolvedSecret>>,
    providers: Arc<ProviderSet>,
    components: BTreeMap<String, InstanceView>,
}

/// The validated, resolved configuration. `Send + Sync`; build once, share.
#[derive(Debug)]
pub struct Workspace {
    config: AtmosConfig,
    stacks: Vec<StackView>,
    by_name: HashMap<String, usize>,
    by_manifest: HashMap<String, usize>,
    sops_providers: Vec<Arc<SopsProvider>>,
    warnings: Vec<String>,
}

/// Errors beyond this many are summarised, so one bad import does not print a thousand lines.
const MAX_ERRORS: usize = 50;

impl Workspace {
    /// Finds `atmos.yaml`, loads every stack and validates every declaration.
    pub fn load(opts: &LoadOptions) -> Result<Workspace, ConfigError> {
        let config = AtmosConfig::load(opts)?;
        Self::from_config(config)
    }

    /// Loads the stacks of an already read `atmos.yaml`.
    ///
    /// Three phases: every manifest is read and named (sequentially: imports are cached and
    /// shared), the stacks are resolved in parallel (each stack is independent), then every
    /// location is checked for collisions in stack order, so errors come out the same way on
    /// every run.
    pub fn from_config(config: AtmosConfig) -> Result<Workspace, ConfigError> {
        let files = stack::discover(&config.stacks, &config.file)?;
        let mut errors: Vec<ConfigError> = Vec::new();
        let mut warnings = config.warnings.clone();
        let pending = read_stacks(&config, files, &mut errors, &mut warnings);

        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = pending.len().div_ceil(threads).max(1);
        let mut chunks: Vec<Vec<PendingStack>> = Vec::new();
        let mut pending = pending.into_iter().peekable();
        while pending.peek().is_some() {
            chunks.push(pending.by_ref().take(chunk).collect());
        }
        let config_ref = &config;
        let parts: Vec<BuiltPart> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|part| scope.spawn(move || build_part(config_ref, part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut stacks: Vec<StackView> = Vec::new();
        let mut sops_providers: Vec<Arc<SopsProvider>> = Vec::new();
        for part in parts {
            stacks.extend(part.views);
            errors.extend(part.errors);
            warnings.extend(part.warnings);
            sops_providers.extend(part.providers);
        }
        errors.extend(collisions(&config, &stacks));
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, s) in stacks.iter().enumerate() {
            if let Some(&j) = by_name.get(&s.name) {
                errors.push(ConfigError::invalid(
                    &s.file,
                    "name",
                    format!(
                        "stack name {:?} is also the name of {}; stack names must be unique",
                        s.name,
                        stacks[j].file.display()
                    ),
                ));
            } else {
                by_name.insert(s.name.clone(), i);
            }
        }
        // A bad declaration in a shared catalog shows up in every stack importing it: once is
        // enough.
        let mut seen = HashSet::new();
        let mut errors: Vec<ConfigError> = errors
            .into_iter()
            .filter(|e| seen.insert(e.to_string()))
            .collect();
        if errors.len() > MAX_ERRORS {
            let more = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            errors.push(ConfigError::invalid(
                &config.file,
                "",
                format!("... and {more} more errors"),
            ));
        }
        ConfigError::collect(errors)?;
        let by_manifest = stacks
            .iter()
            .enumerate()
            .map(|(i, s)| (s.manifest.clone(), i))
            .collect();
        sops_providers.sort_by(|a, b| {
            (a.name.as_str(), a.base_dir.as_path()).cmp(&(b.name.as_str(), b.base_dir.as_path()))
        });
        sops_providers.dedup_by(|a, b| a == b);
        let mut seen = HashSet::new();
        warnings.retain(|w| seen.insert(w.clone()));
        Ok(Workspace {
            config,
            stacks,
            by_name,
            by_manifest,
            sops_providers,
            warnings,
        })
    }

    /// The stack by logical name or by manifest path (relative to `stacks.base_path`, with or
    /// without extension, or absolute).
    fn stack(&self, stack: &str) -> Result<&StackView, ResolveError> {
        if let Some(&i) = self.by_name.get(stack) {
            return Ok(&self.stacks[i]);
        }
        let as_path = Path::new(stack);
        let rel = as_path
            .strip_prefix(&self.config.stacks.base_path)
            .unwrap_or(as_path);
        let rel = rel.to_string_lossy();
        let rel = rel
            .strip_suffix(".yaml")
            .or_else(|| rel.strip_suffix(".yml"))
            .unwrap_or(&rel)
            .trim_start_matches("./");
        if let Some(&i) = self.by_manifest.get(rel) {
            return Ok(&self.stacks[i]);
        }
        Err(ResolveError::UnknownStack {
            stack: stack.to_string(),
            closest: error::closest(stack, self.stacks.iter().map(|s| s.name.as_str())),
        })
    }

    fn view(
        &self,
        stack: &str,
        component: Option<&str>,
    ) -> Result<(&StackView, &BTreeMap<String, Arc<ResolvedSecret>>), ResolveError> {
        let s = self.stack(stack)?;
        let Some(c) = component else {
            return Ok((s, &s.secrets));
        };
        let Some(inst) = s.components.get(c) else {
            return Err(ResolveError::UnknownComponent {
                stack: s.name.clone(),
                component: c.to_string(),
                closest: error::closest(
                    c,
                    s.components
                        .iter()
                        .filter(|(_, i)| !i.is_abstract)
                        .map(|(n, _)| n.as_str()),
                ),
            });
        };
        if inst.is_abstract {
            return Err(ResolveError::AbstractComponent {
                stack: s.name.clone(),
                component: c.to_string(),
            });
        }
        Ok((s, &inst.secrets))
    }

    fn answer(secret: &ResolvedSecret, component: Option<&str>) -> ResolvedSecret {
        let mut out = secret.clone();
        out.component = component.map(str::to_string);
        out
    }

    /// Resolves `name` as seen from `stack` (and `component`).
    pub fn resolve(
        &self,
        stack: &str,
        component: Option<&str>,
        name: &str,
    ) -> Result<ResolvedSecret, ResolveError> {
        let (s, secrets) = self.view(stack, component)?;
        match secrets.get(name) {
            Some(secret) => Ok(Self::answer(secret, component)),
            None => Err(ResolveError::Undeclared {
                name: name.to_string(),
                stack: s.name.clone(),
                component: component.map(str::to_string),
                declared: secrets.keys().cloned().collect(),
                closest: error::closest(name, secrets.keys().map(String::as_str))
                    .into_iter()
                    .next(),
            }),
        }
    }

    /// Every secret visible in `stack` (and `component`), sorted by name.
    pub fn declared(
        &self,
        stack: &str,
        component: Option<&str>,
    ) -> Result<Vec<ResolvedSecret>, ResolveError> {
        let (_, secrets) = self.view(stack, component)?;
        Ok(secrets
            .values()
            .map(|s| Self::answer(s, component))
            .collect())
    }

    /// Resolves `name` for a write: a write with a component to a secret that is still
    /// stack-scoped at that component is an error.
    pub fn check_write(
        &self,
        stack: &str,
        component: Option<&str>,
        name: &str,
    ) -> Result<ResolvedSecret, ResolveError> {
        let secret = self.resolve(stack, component, name)?;
        if let (Some(c), Scope::Stack) = (component, secret.scope) {
            return Err(ResolveError::StackScopedWrite {
                name: name.to_string(),
                stack: secret.stack,
                component: c.to_string(),
                origin: secret.origin,
            });
        }
        Ok(secret)
    }

    /// The logical names of all stacks, sorted.
    pub fn stack_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.stacks.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names
    }

    /// The (non-abstract) component instances of a stack, sorted.
    pub fn components(&self, stack: &str) -> Result<Vec<String>, ResolveError> {
        let s = self.stack(stack)?;
        Ok(s.components
            .iter()
            .filter(|(_, i)| !i.is_abstract)
            .map(|(n, _)| n.clone())
            .collect())
    }

    /// The logical name of a stack given by name or manifest path.
    pub fn stack_name(&self, stack: &str) -> Result<String, ResolveError> {
        Ok(self.stack(stack)?.name.clone())
    }

    /// A store of `atmos.yaml` by name.
    pub fn store(&self, name: &str) -> Option<&StoreConfig> {
        self.config.stores.get(name)
    }

    /// All stores of `atmos.yaml`, in file order.
    pub fn stores(&self) -> impl Iterator<Item = &StoreConfig> {
        self.config.stores.values()
    }

    /// The SOPS provider `name` in effect in `stack` (and `component`): narrower definitions of
    /// the same name are merged over wider ones.
    pub fn sops_provider(
        &self,
        stack: &str,
        component: Option<&str>,
        name: &str,
    ) -> Option<Arc<SopsProvider>> {
        let s = self.stack(stack).ok()?;
        let set = match component {
            Some(c) => &s.components.get(c)?.providers,
            None => &s.providers,
        };
        set.get(name).cloned()
    }

    /// Every distinct SOPS provider definition in effect anywhere (for building stores up front).
    pub fn sops_providers(&self) -> &[Arc<SopsProvider>] {
        &self.sops_providers
    }

    /// Things worth telling a person that did not stop loading (unknown options, skipped files).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The `atmos.yaml` this workspace was loaded from.
    pub fn config(&self) -> &AtmosConfig {
        &self.config
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Workspace>();
        check::<ResolvedSecret>();
    }
}
