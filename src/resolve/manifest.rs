//! Stack manifests: YAML loading, `import:` resolution and deep merge.
//!
//! A manifest's effective document is the deep merge of its imports, in list order, with the
//! importing file last: maps merge key by key, anything else (lists included) is replaced. The
//! effective document of every file is cached, because a catalog or `_defaults.yaml` is imported
//! by many stacks and its result does not depend on who imports it.
//!
//! Declarations must be reported with the file they were written in, but the merged document has
//! no spans. So while a file is read, every `secrets.vars.<NAME>` map (top level, under a
//! component, under `overrides`) gets a hidden origin entry naming the file; the merge carries it
//! like any other key, so after merging it names the last file that set that declaration.
//!
//! For speed: every manifest under `stacks.base_path` is parsed on all cores before the import
//! walk, and each file is pruned to the sections this layer reads (metadata, secrets, the vars
//! that name stacks) before it is merged into hundreds of stacks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::GlobBuilder;
use serde_yaml_ng::{Mapping, Value};

use super::error::ConfigError;

/// The hidden key that records which file a declaration came from. YAML authors cannot write a
/// NUL in a plain key by accident, so it never meets a user key.
pub const ORIGIN_KEY: &str = "\0origin";

/// Reads one YAML file into a [`Value`], with located errors. An empty file is an empty map.
pub fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml(path, &text)
}

/// Parses YAML text that came from `path` (used for error locations only).
pub fn parse_yaml(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let mut value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::yaml(path, &e))?;
    value
        .apply_merge()
        .map_err(|e| ConfigError::yaml(path, &e))?;
    match value {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(value),
        _ => Err(ConfigError::Yaml {
            file: path.to_path_buf(),
            line: Some(1),
            column: Some(1),
            message: "a manifest must be a map at the top level".into(),
        }),
    }
}

/// Deep-merges `overlay` into `base`: maps merge key by key (recursively), anything else in the
/// overlay replaces what was there (lists are replaced, not appended).
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// `value[key]` for a string key.
pub fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_mapping().and_then(|m| m.get(key))
}

/// Follows a path of string keys.
pub fn get_path<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| get(v, k))
}

/// Drops what the resolution layer never reads (component `vars`, `env`, `backend`,
/// `providers`, ...) as soon as a file is read, so merging a large catalog into hundreds of
/// stacks copies only metadata and secrets. Safe because a deep merge at one key path depends
/// only on the values at that path: removing other keys changes nothing we read.
///
/// Kept: `import`, `name`, `vars`, `settings` and `env` (the `name_template` context), `secrets`,
/// `components.terraform.<instance>.{metadata, secrets}`, `overrides.secrets` and
/// `terraform.overrides.secrets`.
fn prune(doc: &mut Value) {
    fn keep_only(v: &mut Value, keys: &[&str]) {
        if let Value::Mapping(m) = v {
            m.retain(|k, _| k.as_str().is_some_and(|k| keys.contains(&k)));
        }
    }
    keep_only(
        doc,
        &[
            "import",
            "name",
            "vars",
            "settings",
            "env",
            "secrets",
            "components",
            "overrides",
            "terraform",
        ],
    );
    if let Some(components) = doc.get_mut("components") {
        keep_only(components, &["terraform"]);
        if let Some(Value::Mapping(instances)) = components.get_mut("terraform") {
            for (_, instance) in instances.iter_mut() {
                keep_only(instance, &["metadata", "secrets"]);
            }
        }
    }
    if let Some(overrides) = doc.get_mut("overrides") {
        keep_only(overrides, &["secrets"]);
    }
    if let Some(terraform) = doc.get_mut("terraform") {
        keep_only(terraform, &["overrides"]);
        if let Some(overrides) = terraform.get_mut("overrides") {
            keep_only(overrides, &["secrets"]);
        }
    }
}

fn secrets_vars(v: &mut Value) -> Option<&mut Value> {
    v.get_mut("secrets").and_then(|s| s.get_mut("vars"))
}

/// Marks every declaration map of a freshly read manifest with the file it came from.
fn mark_origins(doc: &mut Value, file: &Path) {
    let origin = Value::String(file.display().to_string());
    let mark = |vars: Option<&mut Value>| {
        if let Some(Value::Mapping(vars)) = vars {
            for (_, decl) in vars.iter_mut() {
                // `NAME:` with nothing after it re-declares with no fields (a pull-down).
                if decl.is_null() {
                    *decl = Value::Mapping(Mapping::new());
                }
                if let Value::Mapping(d) = decl {
                    d.insert(Value::String(ORIGIN_KEY.into()), origin.clone());
                }
            }
        }
    };
    mark(secrets_vars(doc));
    for section in [&["overrides"][..], &["terraform", "overrides"][..]] {
        let mut cur = Some(&mut *doc);
        for key in section {
            cur = cur.and_then(|v| v.get_mut(*key));
        }
        if let Some(v) = cur {
            mark(secrets_vars(v));
        }
    }
    if let Some(Value::Mapping(components)) = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("terraform"))
    {
        for (_, instance) in components.iter_mut() {
            mark(secrets_vars(instance));
        }
    }
}

/// One entry of `import:`.
struct Import {
    path: String,
    skip_if_missing: bool,
}

fn parse_imports(doc: &Value, file: &Path) -> Result<Vec<Import>, ConfigError> {
    let Some(list) = get(doc, "import") else {
        return Ok(Vec::new());
    };
    let items = match list {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items.as_slice(),
        Value::String(_) => std::slice::from_ref(list),
        _ => {
            return Err(ConfigError::invalid(
                file,
                "import",
                "must be a list of paths or of {path, skip_if_missing}",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("import[{i}]");
        match item {
            Value::String(p) => out.push(Import {
                path: p.clone(),
                skip_if_missing: false,
            }),
            Value::Mapping(m) => {
                let path = m.get("path").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::invalid(file, format!("{at}.path"), "must be a string")
                })?;
                let skip = match m.get("skip_if_missing") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(ConfigError::invalid(
                            file,
                            format!("{at}.skip_if_missing"),
                            "must be true or false",
                        ));
                    }
                };
                out.push(Import {
                    path: path.to_string(),
                    skip_if_missing: skip,
                });
            }
            _ => {
                return Err(ConfigError::invalid(
                    file,
                    at,
                    "must be a path or a map with `path`",
                ));
            }
        }
    }
    Ok(out)
}

fn has_yaml_ext(p: &str) -> bool {
    p.ends_with(".yaml") || p.ends_with(".yml")
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

/// Loads manifests with their imports, caching each file's effective document.
pub struct ManifestLoader {
    stacks_base: PathBuf,
    cache: HashMap<PathBuf, Arc<Value>>,
    /// Directory listings for glob imports, keyed by the directory walked.
    listings: HashMap<PathBuf, Arc<Vec<PathBuf>>>,
    /// Each file's own top-level `name:` (not merged: an import must not rename its importer).
    own_names: HashMap<PathBuf, Value>,
    /// Files parsed ahead of time (in parallel), taken when first loaded.
    parsed: HashMap<PathBuf, Result<Value, ConfigError>>,
    in_progress: Vec<PathBuf>,
}

impl ManifestLoader {
    /// A loader rooted at `stacks.base_path`.
    pub fn new(stacks_base: PathBuf) -> Self {
        ManifestLoader {
            stacks_base,
            cache: HashMap::new(),
            listings: HashMap::new(),
            own_names: HashMap::new(),
            parsed: HashMap::new(),
            in_progress: Vec::new(),
        }
    }

    /// Reads and parses every manifest under `stacks.base_path` on all cores, so the sequential
    /// import walk that follows only merges. Errors are kept and reported only if the file is
    /// actually loaded.
    pub fn preparse(&mut self) {
        let root = self.stacks_base.clone();
        let files = self.listing(&normalize(&root));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = files.len().div_ceil(threads).max(1);
        let parsed: Vec<(PathBuf, Result<Value, ConfigError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|f| {
                                let f = normalize(f);
                                let v = read_yaml(&f);
                                (f, v)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        self.parsed.extend(parsed);
    }

    /// The file's own top-level `name:`, once it has been loaded.
    pub fn own_name(&self, file: &Path) -> Option<&Value> {
        self.own_names.get(file)
    }

    /// Like [`ManifestLoader::load`] for a top-level stack manifest: its result is not kept
    /// (only imported files are worth caching), unless another manifest imported it already.
    pub fn load_top(&mut self, file: &Path) -> Result<Arc<Value>, ConfigError> {
        let cached = self.cache.contains_key(file);
        let doc = self.load(file)?;
        if !cached {
            self.cache.remove(file);
        }
        Ok(doc)
    }

    /// The effective document of `file`: its imports merged in order, then the file itself.
    /// The `import` key is removed from the result.
    pub fn load(&mut self, file: &Path) -> Result<Arc<Value>, ConfigError> {
        if let Some(done) = self.cache.get(file) {
            return Ok(done.clone());
        }
        if let Some(pos) = self.in_progress.iter().position(|p| p == file) {
            let cycle: Vec<String> = self.in_progress[pos..]
                .iter()
                .chain(std::iter::once(&file.to_path_buf()))
                .map(|p| p.display().to_string())
                .collect();
            return Err(ConfigError::invalid(
                file,
                "import",
                format!("import cycle: {}", cycle.join(" -> ")),
            ));
        }
        let mut own = match self.parsed.remove(file) {
            Some(parsed) => parsed?,
            None => read_yaml(file)?,
        };
        if let Some(name) = get(&own, "name") {
            self.own_names.insert(file.to_path_buf(), name.clone());
        }
        prune(&mut own);
        mark_origins(&mut own, file);
        let imports = parse_imports(&own, file)?;
        self.in_progress.push(file.to_path_buf());
        let merged = self.merge_imports(file, &imports, own);
        self.in_progress.pop();
        let merged = Arc::new(merged?);
        self.cache.insert(file.to_path_buf(), merged.clone());
        Ok(merged)
    }

    fn merge_imports(
        &mut self,
        file: &Path,
        imports: &[Import],
        own: Value,
    ) -> Result<Value, ConfigError> {
        if imports.is_empty() {
            let mut own = own;
            if let Value::Mapping(m) = &mut own {
                m.remove("import");
            }
            return Ok(own);
        }
        let mut acc = Value::Mapping(Mapping::new());
        for (i, import) in imports.iter().enumerate() {
            for target in self.expand(file, i, import)? {
                let doc = self.load(&target)?;
                deep_merge(&mut acc, &doc);
            }
        }
        deep_merge(&mut acc, &own);
        if let Value::Mapping(m) = &mut acc {
            m.remove("import");
        }
        Ok(acc)
    }

    /// The files one import names: relative to the importing file when it starts with `./` or
    /// `../`, else to `stacks.base_path`; `.yaml` (then `.yml`) added when there is no
    /// extension; globs expanded in sorted order.
    fn expand(
        &mut self,
        file: &Path,
        index: usize,
        import: &Import,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let raw = import.path.as_str();
        let root = if raw.starts_with("./") || raw.starts_with("../") {
            file.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            self.stacks_base.clone()
        };
        let found = if is_glob(raw) {
            self.expand_glob(&root, raw)
                .map_err(|m| ConfigError::invalid(file, format!("import[{index}]"), m))?
        } else {
            let base = root.join(raw);
            let candidates: Vec<PathBuf> = if has_yaml_ext(raw) {
                vec![base]
            } else {
                vec![
                    PathBuf::from(format!("{}.yaml", base.display())),
                    PathBuf::from(format!("{}.yml", base.display())),
                    base,
                ]
            };
            candidates
                .into_iter()
                .find(|c| c.is_file())
                .map(|c| vec![normalize(&c)])
                .unwrap_or_default()
        };
        if found.is_empty() && !import.skip_if_missing {
            return Err(ConfigError::invalid(
                file,
                format!("import[{index}]"),
                format!(
                    "{raw:?} matches no manifest (looked under {}); fix the path or set skip_if_missing: true",
                    root.display()
                ),
            ));
        }
        Ok(found)
    }

    fn expand_glob(&mut self, root: &Path, raw: &str) -> Result<Vec<PathBuf>, String> {
        let patterns: Vec<String> = if has_yaml_ext(raw) {
            vec![raw.to_string()]
        } else {
            vec![format!("{raw}.yaml"), format!("{raw}.yml")]
        };
        let mut builder = globset::GlobSetBuilder::new();
        for p in &patterns {
            let glob = GlobBuilder::new(p.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad glob {raw:?}: {e}"))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| format!("bad glob {raw:?}: {e}"))?;
        let root = normalize(root);
        let files = self.listing(&root);
        let mut out: Vec<PathBuf> = files
            .iter()
            .filter(|f| {
                f.strip_prefix(&root)
                    .map(|rel| set.is_match(rel))
                    .unwrap_or(false)
            })
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every YAML file under `dir` (cached: many stacks glob the same catalog).
    fn listing(&mut self, dir: &Path) -> Arc<Vec<PathBuf>> {
        if let Some(l) = self.listings.get(dir) {
            return l.clone();
        }
        let files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
            .follow_links(true)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .filter(|p| p.to_str().is_some_and(has_yaml_ext))
            .collect();
        let files = Arc::new(files);
        self.listings.insert(dir.to_path_buf(), files.clone());
        files
    }
}

/// Removes `.` and resolves `..` lexically, so one file has one cache key.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn maps_merge_lists_replace() {
        let mut a = y("a: {x: 1, y: [1, 2]}\nb: 1");
        deep_merge(&mut a, &y("a: {y: [3], z: 2}\nc: 3"));
        assert_eq!(a, y("a: {x: 1, y: [3], z: 2}\nb: 1\nc: 3"));
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let err = parse_yaml(Path::new("f.yaml"), "a: 1\nb: [1, 2\n").unwrap_err();
        match err {
            ConfigError::Yaml { line, column, .. } => {
                assert!(line.is_some() && column.is_some());
            }
            other => panic!("{other}"),
        }
    }
}
