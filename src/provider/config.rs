//! The `provider "atmos"` block and the session it opens: the Atmos workspace, loaded and
//! validated once per provider process, and the stores, opened on first use. Every data source,
//! ephemeral resource and resource of the process shares it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::protocol::diag::{AttributePath, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::value::{Type, Value};
use crate::resolve::{LoadOptions, Workspace};

use super::backends::Backends;

/// The provider block's schema.
pub fn schema() -> Schema {
    Schema::new(Block::of(
        "Reads and writes secrets declared in [Atmos](https://atmos.tools) stack configuration \
         (`secrets.vars`), in the backend each declaration names.",
        vec![
            Attribute::optional("cli_config_path", Type::String).describe(
                "Directory holding `atmos.yaml`. Defaults to `ATMOS_CLI_CONFIG_PATH`, then the \
                 working directory and its parents.",
            ),
            Attribute::optional("base_path", Type::String).describe(
                "Base path for stacks and relative paths. Defaults to `ATMOS_BASE_PATH`, then \
                 `base_path` in `atmos.yaml`.",
            ),
            Attribute::optional("stack", Type::String).describe(
                "Default stack (logical name or manifest path) for data sources and resources \
                 that do not set one.",
            ),
            Attribute::optional("component", Type::String)
                .describe("Default component instance for data sources that do not set one."),
        ],
    ))
}

/// Checks what can be checked before configuration.
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    for attr in ["cli_config_path", "base_path", "stack", "component"] {
        if let Some(Value::String(s)) = config.attr(attr)
            && s.trim().is_empty()
        {
            d.attribute_error(
                AttributePath::attr(attr),
                "Empty value",
                format!("`{attr}` must not be empty; leave it unset to use the default."),
            );
        }
    }
    d
}

/// A configured provider process.
pub struct Session {
    /// The loaded workspace, or `None` while the provider configuration is still unknown (plan).
    pub workspace: Option<Arc<Workspace>>,
    /// Stores, opened on first use.
    pub backends: Backends,
    /// Default stack for data sources and resources.
    pub default_stack: Option<String>,
    /// Default component for data sources.
    pub default_component: Option<String>,
}

fn known_string(config: &Value, name: &str) -> Result<Option<String>, ()> {
    match config.attr(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

impl Session {
    /// Loads the workspace the provider block points at.
    pub async fn open(config: &Value) -> Result<(Session, Diagnostics), Diagnostics> {
        let mut d = validate(config);
        if d.has_errors() {
            return Err(d);
        }
        let get = |name| known_string(config, name);
        let (Ok(cli), Ok(base), Ok(stack), Ok(component)) = (
            get("cli_config_path"),
            get("base_path"),
            get("stack"),
            get("component"),
        ) else {
            // Some provider argument is unknown until apply: nothing can be resolved yet.
            return Ok((
                Session {
                    workspace: None,
                    backends: Backends::new(),
                    default_stack: None,
                    default_component: None,
                },
                d,
            ));
        };
        let opts = LoadOptions::from_env(cli.map(PathBuf::from), base.map(PathBuf::from));
        let loaded =
            tokio::task::spawn_blocking(move || Workspace::load(&opts).map_err(|e| e.to_string()))
                .await;
        let workspace = match loaded {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                d.error(
                    "Invalid Atmos configuration",
                    format!("The Atmos configuration could not be loaded:\n\n{e}"),
                );
                return Err(d);
            }
            Err(e) => {
                d.error(
                    "Loading the Atmos configuration failed",
                    format!("The loader stopped unexpectedly: {e}"),
                );
                return Err(d);
            }
        };
        log::debug!(
            "atmos workspace loaded: {} stacks",
            workspace.stack_names().len()
        );
        for warning in workspace.warnings() {
            log::warn!("atmos configuration: {warning}");
            d.warning(None, "Atmos configuration", warning.clone());
        }
        Ok((
            Session {
                workspace: Some(Arc::new(workspace)),
                backends: Backends::new(),
                default_stack: stack,
                default_component: component,
            },
            d,
        ))
    }
}
