//! Errors of the resolution layer.
//!
//! Two kinds: [`ConfigError`] when the configuration cannot be loaded (it names the file, and the
//! line and column for YAML syntax, or the attribute path inside the file), and [`ResolveError`]
//! when a lookup in a loaded configuration fails (it lists what exists and the closest names).
//! No error ever carries a secret value: the layer never sees one.

use std::fmt;
use std::path::PathBuf;

/// Where a declaration (or any other configuration item) was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The file the item came from (the last one that set it, after imports are merged).
    pub file: PathBuf,
    /// The attribute path inside the merged document, e.g. `components.terraform.vpc.secrets.vars.X`.
    pub path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.path)
    }
}

/// The configuration could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `atmos.yaml` where we looked.
    #[error("atmos.yaml not found; looked in: {}", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A YAML syntax or structure error.
    #[error("{}:{}:{}: {message}", file.display(), line.map_or("?".into(), |l| l.to_string()), column.map_or("?".into(), |c| c.to_string()))]
    Yaml {
        /// The file.
        file: PathBuf,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// The parser's words.
        message: String,
    },
    /// A value is present but wrong (type, unknown name, rule of the contract).
    #[error("{}: {path}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The attribute path inside the file (`stores.ssm.kind`).
        path: String,
        /// What is wrong and, where possible, what would be right.
        message: String,
    },
    /// Two declarations land on the same native location in one store.
    #[error("{0}")]
    Collision(Box<Collision>),
    /// Several problems, each on its own line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

/// Two coordinates that one store would keep under one native name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "collision in {backend}: {location} is reached by {first_coordinate} (declared at {first}) and by {second_coordinate} (declared at {second})"
)]
pub struct Collision {
    /// The store (or `SOPS files`).
    pub backend: String,
    /// The native location both reach.
    pub location: String,
    /// The first declaration.
    pub first: Origin,
    /// Its coordinate.
    pub first_coordinate: String,
    /// The second declaration.
    pub second: Origin,
    /// Its coordinate.
    pub second_coordinate: String,
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `file` at `path`.
    pub fn invalid(
        file: impl Into<PathBuf>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    /// Turns a parser error into a located [`ConfigError::Yaml`].
    pub fn yaml(file: impl Into<PathBuf>, err: &serde_yaml_ng::Error) -> Self {
        let loc = err.location();
        let mut message = err.to_string();
        if let Some(loc) = &loc {
            // The parser appends its own "at line L column C"; we print it as file:line:col.
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        ConfigError::Yaml {
            file: file.into(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    }

    /// One error from many: none is `Ok`, one is itself, more is [`ConfigError::Many`].
    pub fn collect(mut errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    /// The individual errors (a [`ConfigError::Many`] flattened).
    pub fn iter(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(all) => all.iter().flat_map(|e| e.iter()).collect(),
            other => vec![other],
        }
    }
}

/// A lookup in a loaded configuration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No stack of that name or manifest path.
    #[error("stack {stack:?} not found{}", suggest(closest))]
    UnknownStack {
        /// What was asked for.
        stack: String,
        /// The closest stack names, best first.
        closest: Vec<String>,
    },
    /// The stack has no such component instance.
    #[error(
        "component {component:?} not found in stack {stack:?}{}",
        suggest(closest)
    )]
    UnknownComponent {
        /// The stack (logical name).
        stack: String,
        /// What was asked for.
        component: String,
        /// The closest instance names, best first.
        closest: Vec<String>,
    },
    /// The instance is `metadata.type: abstract` and cannot be used directly.
    #[error(
        "component {component:?} in stack {stack:?} is abstract (metadata.type: abstract); use an instance that inherits it"
    )]
    AbstractComponent {
        /// The stack (logical name).
        stack: String,
        /// The abstract instance.
        component: String,
    },
    /// The name is not declared where it was asked for.
    #[error("secret {name:?} is not declared in {}; declared there: {}{}",
        place(stack, component.as_deref()),
        if declared.is_empty() { "(none)".to_string() } else { declared.join(", ") },
        closest.as_ref().map(|c| format!("; did you mean {c:?}?")).unwrap_or_default())]
    Undeclared {
        /// The name asked for.
        name: String,
        /// The stack (logical name).
        stack: String,
        /// The component, if one was given.
        component: Option<String>,
        /// Every name declared there, sorted.
        declared: Vec<String>,
        /// The closest declared name, if any is close.
        closest: Option<String>,
    },
    /// A write with a component to a secret that is still stack-scoped at that component.
    #[error(
        "secret {name:?} is stack-scoped at component {component:?} in stack {stack:?} (declared at {origin}); declare it under components.terraform.{component}.secrets.vars to give this component its own value, or write it without a component"
    )]
    StackScopedWrite {
        /// The secret.
        name: String,
        /// The stack (logical name).
        stack: String,
        /// The component the write named.
        component: String,
        /// Where the stack-level declaration is.
        origin: Origin,
    },
}

fn suggest(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            closest
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }
}

fn place(stack: &str, component: Option<&str>) -> String {
    match component {
        Some(c) => format!("component {c:?} of stack {stack:?}"),
        None => format!("stack {stack:?}"),
    }
}

/// The candidates closest to `wanted`, best first (at most three, only reasonably close ones).
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wanted, c), c))
        .filter(|(score, c)| {
            *score >= 0.8 || strsim::levenshtein(wanted, c) <= (wanted.len() / 3).max(2)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}
