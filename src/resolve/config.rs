//! `atmos.yaml`: where it is found, and what we take from it.
//!
//! Found in this order: the provider's `cli_config_path`, `ATMOS_CLI_CONFIG_PATH` (both a
//! directory, or the file itself), then the working directory and its parents. `base_path`
//! comes from the provider's `base_path`, `ATMOS_BASE_PATH`, the file's own `base_path`
//! (relative to the directory of `atmos.yaml`), else that directory. Every other relative path
//! is rooted at the base path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use super::error::ConfigError;
use super::manifest::{get, normalize, read_yaml};
use super::naming::{Naming, StoreKind};

/// Where to look for the configuration. Relative paths are taken from `working_dir`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// A directory holding `atmos.yaml`, or the file itself.
    pub cli_config_path: Option<PathBuf>,
    /// Overrides `base_path` of `atmos.yaml`.
    pub base_path: Option<PathBuf>,
    /// Where the search for `atmos.yaml` starts when no path is given.
    pub working_dir: PathBuf,
}

impl LoadOptions {
    /// Options from the provider's attributes, with `ATMOS_CLI_CONFIG_PATH`, `ATMOS_BASE_PATH` and
    /// the current directory as fallbacks (empty values count as unset).
    pub fn from_env(cli_config_path: Option<PathBuf>, base_path: Option<PathBuf>) -> LoadOptions {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        LoadOptions {
            cli_config_path: cli_config_path
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(|| env("ATMOS_CLI_CONFIG_PATH")),
            base_path: base_path
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(|| env("ATMOS_BASE_PATH")),
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }

    fn absolute(&self, p: &Path) -> PathBuf {
        normalize(&self.working_dir.join(p))
    }
}

const CONFIG_NAMES: [&str; 2] = ["atmos.yaml", "atmos.yml"];

/// Finds `atmos.yaml` per [`LoadOptions`].
pub fn find_config(opts: &LoadOptions) -> Result<PathBuf, ConfigError> {
    let mut searched = Vec::new();
    if let Some(given) = &opts.cli_config_path {
        let given = opts.absolute(given);
        if given.is_file() {
            return Ok(given);
        }
        for name in CONFIG_NAMES {
            let candidate = given.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        // An explicit path that holds no configuration is an error, not a reason to guess.
        searched.push(given);
        return Err(ConfigError::NotFound { searched });
    }
    let start = opts.absolute(&opts.working_dir);
    for dir in start.ancestors() {
        for name in CONFIG_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        searched.push(dir.to_path_buf());
    }
    Err(ConfigError::NotFound { searched })
}

/// The `stacks:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StacksConfig {
    /// `stacks.base_path`, absolute.
    pub base_path: PathBuf,
    /// Glob patterns (relative to `base_path`) of top-level stack manifests.
    pub included_paths: Vec<String>,
    /// Glob patterns excluded from the above.
    pub excluded_paths: Vec<String>,
    /// `stacks.name_pattern`.
    pub name_pattern: Option<String>,
    /// `stacks.name_template`.
    pub name_template: Option<String>,
}

/// One store of `atmos.yaml`'s `stores:` map.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// The store's name (its key in `stores:`).
    pub name: String,
    /// Its kind.
    pub kind: StoreKind,
    /// `secret: true`: only such stores may hold declared secrets.
    pub secret: bool,
    /// `identity`, for the backend's authentication.
    pub identity: Option<String>,
    /// The raw `options` map, for the backend.
    pub options: Mapping,
    /// The naming options taken from `options`.
    pub naming: Naming,
}

/// A SOPS provider of `secrets.providers`, after narrower definitions are merged over wider ones.
#[derive(Clone, Debug, PartialEq)]
pub struct SopsProvider {
    /// The provider's name.
    pub name: String,
    /// `spec.path`, absolute (default `<base_path>/secrets`): where the default files live.
    pub base_dir: PathBuf,
    /// `spec.file`, a Go template over `.stack`, `.component` and `.scope`, for the file of a
    /// scope; relative results are rooted at the base path.
    pub file_template: Option<String>,
    /// `spec.age_key_file`, absolute.
    pub age_key_file: Option<PathBuf>,
    /// `spec.age_recipients`.
    pub age_recipients: Vec<String>,
    /// The raw `spec` map, for options this layer does not interpret.
    pub spec: Mapping,
}

/// What `atmos.yaml` says, validated.
#[derive(Clone, Debug)]
pub struct AtmosConfig {
    /// The `atmos.yaml` file.
    pub file: PathBuf,
    /// The base path every relative path is rooted at.
    pub base_path: PathBuf,
    /// `stacks:`.
    pub stacks: StacksConfig,
    /// `stores:` in file order.
    pub stores: IndexMap<String, StoreConfig>,
    /// `secrets.providers` as written (merged under stack and component definitions later).
    pub providers: Mapping,
    /// Things worth telling a person that do not stop loading.
    pub warnings: Vec<String>,
}

fn opt_string(file: &Path, v: Option<&Value>, path: &str) -> Result<Option<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(ConfigError::invalid(file, path, "must be a string")),
    }
}

fn string_list(file: &Path, v: Option<&Value>, path: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    ConfigError::invalid(file, format!("{path}[{i}]"), "must be a string")
                })
            })
            .collect(),
        Some(_) => Err(ConfigError::invalid(
            file,
            path,
            "must be a list of strings",
        )),
    }
}

fn map_or_empty<'a>(
    file: &Path,
    v: Option<&'a Value>,
    path: &str,
) -> Result<Option<&'a Mapping>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(_) => Err(ConfigError::invalid(file, path, "must be a map")),
    }
}

/// Expands `~/` and roots a relative path at `base`.
pub fn rooted(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return normalize(&PathBuf::from(home).join(rest));
    }
    normalize(&base.join(p))
}

impl AtmosConfig {
    /// Finds and reads `atmos.yaml`.
    pub fn load(opts: &LoadOptions) -> Result<AtmosConfig, ConfigError> {
        let file = find_config(opts)?;
        let doc = read_yaml(&file)?;
        Self::from_value(opts, file, &doc)
    }

    fn from_value(opts: &LoadOptions, file: PathBuf, doc: &Value) -> Result<Self, ConfigError> {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let f = file.as_path();
        let base_path = match &opts.base_path {
            Some(p) => opts.absolute(p),
            None => match opt_string(f, get(doc, "base_path"), "base_path")? {
                Some(p) if !p.is_empty() => rooted(&dir, &p),
                _ => dir.clone(),
            },
        };
        let mut warnings = Vec::new();

        let stacks_doc = get(doc, "stacks");
        let sget = |k: &str| stacks_doc.and_then(|s| get(s, k));
        let stacks_base = opt_string(f, sget("base_path"), "stacks.base_path")?
            .unwrap_or_else(|| "stacks".into());
        let mut included = string_list(f, sget("included_paths"), "stacks.included_paths")?;
        if included.is_empty() {
            included.push("**/*".into());
        }
        let stacks = StacksConfig {
            base_path: rooted(&base_path, &stacks_base),
            included_paths: included,
            excluded_paths: string_list(f, sget("excluded_paths"), "stacks.excluded_paths")?,
            name_pattern: opt_string(f, sget("name_pattern"), "stacks.name_pattern")?
                .filter(|s| !s.is_empty()),
            name_template: opt_string(f, sget("name_template"), "stacks.name_template")?
                .filter(|s| !s.is_empty()),
        };

        let mut stores = IndexMap::new();
        let mut errors = Vec::new();
        if let Some(map) = map_or_empty(f, get(doc, "stores"), "stores")? {
            for (k, v) in map {
                let Some(name) = k.as_str() else {
                    errors.push(ConfigError::invalid(
                        f,
                        "stores",
                        "store names must be strings",
                    ));
                    continue;
                };
                match parse_store(f, name, v, &mut warnings) {
                    Ok(s) => {
                        stores.insert(name.to_string(), s);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        let secrets = get(doc, "secrets");
        let providers = map_or_empty(
            f,
            secrets.and_then(|s| get(s, "providers")),
            "secrets.providers",
        )?
        .cloned()
        .unwrap_or_default();
        if secrets.and_then(|s| get(s, "vars")).is_some() {
            warnings.push(format!(
                "{}: secrets.vars in atmos.yaml is ignored: declare secrets in stack manifests (with scope: global for one value everywhere)",
                f.display()
            ));
        }
        ConfigError::collect(errors)?;
        Ok(AtmosConfig {
            file,
            base_path,
            stacks,
            stores,
            providers,
            warnings,
        })
    }
}

fn parse_store(
    f: &Path,
    name: &str,
    v: &Value,
    warnings: &mut Vec<String>,
) -> Result<StoreConfig, ConfigError> {
    let at = format!("stores.{name}");
    let m = v.as_mapping().ok_or_else(|| {
        ConfigError::invalid(f, &at, "must be a map with kind (or type) and options")
    })?;
    let kind_s = match (m.get("kind"), m.get("type")) {
        (Some(k), _) => opt_string(f, Some(k), &format!("{at}.kind"))?,
        (None, Some(t)) => opt_string(f, Some(t), &format!("{at}.type"))?,
        (None, None) => None,
    }
    .ok_or_else(|| ConfigError::invalid(f, &at, "has no kind (or type)"))?;
    let kind = StoreKind::parse(&kind_s).ok_or_else(|| {
        ConfigError::invalid(
            f,
            format!("{at}.kind"),
            format!(
                "unknown store kind {kind_s:?}; known: {}",
                StoreKind::SPELLINGS.join(", ")
            ),
        )
    })?;
    let secret = match m.get("secret") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ConfigError::invalid(
                f,
                format!("{at}.secret"),
                "must be true or false",
            ));
        }
    };
    let identity = opt_string(f, m.get("identity"), &format!("{at}.identity"))?;
    let options = map_or_empty(f, m.get("options"), &format!("{at}.options"))?
        .cloned()
        .unwrap_or_default();
    for key in options.keys() {
        let k = key.as_str().unwrap_or_default();
        if !kind.known_options().contains(&k) {
            warnings.push(format!(
                "{}: {at}.options.{k}: unknown option for {kind}; known: {}",
                f.display(),
                kind.known_options().join(", ")
            ));
        }
    }
    let naming = Naming {
        prefix: opt_string(f, options.get("prefix"), &format!("{at}.options.prefix"))?
            .unwrap_or_default(),
        stack_delimiter: opt_string(
            f,
            options.get("stack_delimiter"),
            &format!("{at}.options.stack_delimiter"),
        )?
        .unwrap_or_else(|| kind.default_stack_delimiter().to_string()),
    };
    Ok(StoreConfig {
        name: name.to_string(),
        kind,
        secret,
        identity,
        options,
        naming,
    })
}

/// The spec keys of a `sops/age` provider this layer knows about.
const SOPS_SPEC_KEYS: &[&str] = &["path", "file", "age_key_file", "age_recipients"];

/// Parses one merged `secrets.providers.<name>` entry; `None` for providers of another kind (a
/// declaration's `sops:` must name a SOPS one, which is checked where it is used).
pub fn parse_sops_provider(
    f: &Path,
    at: &str,
    name: &str,
    v: &Value,
    base_path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<SopsProvider>, ConfigError> {
    let m = v
        .as_mapping()
        .ok_or_else(|| ConfigError::invalid(f, at, "must be a map with kind and spec"))?;
    let kind = opt_string(f, m.get("kind"), &format!("{at}.kind"))?.unwrap_or_default();
    if kind != "sops/age" && kind != "sops" {
        return Ok(None);
    }
    let empty = Mapping::new();
    let spec = map_or_empty(f, m.get("spec"), &format!("{at}.spec"))?.unwrap_or(&empty);
    for key in spec.keys() {
        let k = key.as_str().unwrap_or_default();
        if !SOPS_SPEC_KEYS.contains(&k) {
            warnings.push(format!(
                "{}: {at}.spec.{k}: unknown option for sops/age; known: {}",
                f.display(),
                SOPS_SPEC_KEYS.join(", ")
            ));
        }
    }
    let sget = |k: &str| opt_string(f, spec.get(k), &format!("{at}.spec.{k}"));
    let base_dir = rooted(
        base_path,
        &sget("path")?.unwrap_or_else(|| "secrets".into()),
    );
    Ok(Some(SopsProvider {
        name: name.to_string(),
        base_dir,
        file_template: sget("file")?.filter(|s| !s.is_empty()),
        age_key_file: sget("age_key_file")?.map(|p| rooted(base_path, &p)),
        age_recipients: string_list(
            f,
            spec.get("age_recipients"),
            &format!("{at}.spec.age_recipients"),
        )?,
        spec: spec.clone(),
    }))
}

/// Renders a Go template over string variables. Missing keys are an error rather than Go's
/// `<no value>`, so a typo in a template never becomes a path or a stack name.
pub fn render_template(
    template: &str,
    context: HashMap<String, gtmpl::Value>,
) -> Result<String, String> {
    let out = gtmpl::template(template, gtmpl::Value::Map(context))
        .map_err(|e| format!("template {template:?}: {e}"))?;
    if out.contains("<no value>") {
        return Err(format!(
            "template {template:?} refers to a value that is not set (rendered {out:?})"
        ));
    }
    Ok(out)
}

/// Converts YAML into a template value (tagged values become their inner value).
pub fn to_template_value(v: &Value) -> gtmpl::Value {
    match v {
        Value::Null => gtmpl::Value::Nil,
        Value::Bool(b) => gtmpl::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                gtmpl::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                gtmpl::Value::from(u)
            } else {
                gtmpl::Value::from(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => gtmpl::Value::String(s.clone()),
        Value::Sequence(items) => {
            gtmpl::Value::Array(items.iter().map(to_template_value).collect())
        }
        Value::Mapping(m) => gtmpl::Value::Map(
            m.iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), to_template_value(v))))
                .collect(),
        ),
        Value::Tagged(t) => to_template_value(&t.value),
    }
}
