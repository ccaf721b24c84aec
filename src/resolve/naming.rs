//! Where a value lives: coordinates and the native names each backend builds from them.
//!
//! Everything here is a pure function, so the workspace can compute every location when the
//! configuration is loaded and reject collisions and escapes before any backend is called.
//!
//! Store names follow Atmos's `getKey`: the parts are `prefix`, the stack split on the store's
//! `stack_delimiter` (left out when the stack is empty), the component split on `/` (left out when
//! empty) and the key; they are joined with the kind's joiner and cleaned per kind (see
//! `shared/design/scopes.md`). The clean-ups use Go's single-pass `strings.ReplaceAll` semantics,
//! which Rust's `str::replace` shares, so the names match what `atmos secret set` writes.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The secret store kinds of `atmos.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKind {
    /// `aws/ssm` (legacy `aws-ssm-parameter-store`).
    AwsSsm,
    /// `aws/asm` (legacy `aws-secrets-manager`).
    AwsAsm,
    /// `hashicorp/vault` (legacy `hashicorp-vault`).
    HashicorpVault,
    /// `azure/keyvault` (legacy `azure-key-vault`).
    AzureKeyVault,
    /// `gcp/secretmanager` (legacy `google-secret-manager`, `gsm`).
    GcpSecretManager,
}

impl StoreKind {
    /// Parses a `kind` or a legacy `type` spelling.
    pub fn parse(s: &str) -> Option<StoreKind> {
        Some(match s {
            "aws/ssm" | "aws-ssm-parameter-store" => StoreKind::AwsSsm,
            "aws/asm" | "aws-secrets-manager" => StoreKind::AwsAsm,
            "hashicorp/vault" | "hashicorp-vault" => StoreKind::HashicorpVault,
            "azure/keyvault" | "azure-key-vault" => StoreKind::AzureKeyVault,
            "gcp/secretmanager" | "google-secret-manager" | "gsm" => StoreKind::GcpSecretManager,
            _ => return None,
        })
    }

    /// The canonical `kind` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::AwsSsm => "aws/ssm",
            StoreKind::AwsAsm => "aws/asm",
            StoreKind::HashicorpVault => "hashicorp/vault",
            StoreKind::AzureKeyVault => "azure/keyvault",
            StoreKind::GcpSecretManager => "gcp/secretmanager",
        }
    }

    /// Every accepted spelling, for error messages.
    pub const SPELLINGS: &'static [&'static str] = &[
        "aws/ssm",
        "aws-ssm-parameter-store",
        "aws/asm",
        "aws-secrets-manager",
        "hashicorp/vault",
        "hashicorp-vault",
        "azure/keyvault",
        "azure-key-vault",
        "gcp/secretmanager",
        "google-secret-manager",
        "gsm",
    ];

    /// The default `stack_delimiter`.
    pub fn default_stack_delimiter(self) -> &'static str {
        match self {
            StoreKind::HashicorpVault => "/",
            _ => "-",
        }
    }

    /// The option keys this kind understands (others get a warning).
    pub fn known_options(self) -> &'static [&'static str] {
        match self {
            StoreKind::AwsSsm | StoreKind::AwsAsm => &[
                "prefix",
                "stack_delimiter",
                "region",
                "read_role_arn",
                "write_role_arn",
                "endpoint",
                "endpoint_url",
                "kms_key_id",
                "tier",
                "recovery_window_in_days",
            ],
            StoreKind::HashicorpVault => &[
                "prefix",
                "stack_delimiter",
                "url",
                "address",
                "token",
                "mount",
                "path",
                "namespace",
                "auth",
                "auth_mount",
                "role_id",
                "secret_id",
                "destroy",
            ],
            StoreKind::AzureKeyVault => &["prefix", "stack_delimiter", "vault_url", "purge"],
            StoreKind::GcpSecretManager => &[
                "prefix",
                "stack_delimiter",
                "project_id",
                "credentials",
                "locations",
                "endpoint",
            ],
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The coordinate a scope gives: instance = (stack, component, key), stack = (stack, -, key),
/// global = (-, -, key). The key is the declaration's `reference` when non-empty, else its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coordinate {
    /// The stack's logical name, `None` for global scope.
    pub stack: Option<String>,
    /// The component instance, `None` for stack and global scope.
    pub component: Option<String>,
    /// The key (the name, or the `reference`).
    pub key: String,
}

impl fmt::Display for Coordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({}, {}, {})",
            self.stack.as_deref().unwrap_or("-"),
            self.component.as_deref().unwrap_or("-"),
            self.key
        )
    }
}

/// The naming options of one store (from its `options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    /// `options.prefix`, empty when absent.
    pub prefix: String,
    /// `options.stack_delimiter`, or the kind's default.
    pub stack_delimiter: String,
}

/// Atmos's `getKey`: prefix, stack parts, component parts, key, joined with `joiner`, then `//`
/// collapsed once (Go `strings.ReplaceAll`).
fn join_parts(naming: &Naming, coord: &Coordinate, joiner: &str) -> String {
    let mut parts: Vec<&str> = vec![naming.prefix.as_str()];
    if let Some(stack) = coord.stack.as_deref().filter(|s| !s.is_empty()) {
        if naming.stack_delimiter.is_empty() {
            parts.push(stack);
        } else {
            parts.extend(stack.split(naming.stack_delimiter.as_str()));
        }
    }
    if let Some(component) = coord.component.as_deref().filter(|c| !c.is_empty()) {
        parts.extend(component.split('/'));
    }
    parts.push(&coord.key);
    parts.join(joiner).replace("//", "/")
}

/// The native name of `coord` in a store of `kind`.
pub fn native_name(kind: StoreKind, naming: &Naming, coord: &Coordinate) -> String {
    match kind {
        StoreKind::AwsSsm | StoreKind::AwsAsm => join_parts(naming, coord, "/"),
        // KV v2 paths are relative to the mount; Vault ignores a leading slash, we drop it so one
        // secret has one spelling.
        StoreKind::HashicorpVault => join_parts(naming, coord, "/").trim_matches('/').to_string(),
        StoreKind::GcpSecretManager => join_parts(naming, coord, "_")
            .replace('/', "_")
            .replace("__", "_")
            .trim_matches('_')
            .to_string(),
        StoreKind::AzureKeyVault => {
            let joined = join_parts(naming, coord, "-");
            let cleaned: String = joined
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            cleaned.replace("--", "-").trim_matches('-').to_string()
        }
    }
}

/// The key two names are compared on when looking for collisions: Azure Key Vault names are
/// case-insensitive, every other store compares exactly.
pub fn collision_key(kind: StoreKind, native: &str) -> String {
    match kind {
        StoreKind::AzureKeyVault => native.to_ascii_lowercase(),
        _ => native.to_string(),
    }
}

/// Checks a native name against the backend's own rules, so a name the backend would refuse is
/// reported when the configuration is loaded.
pub fn check_native_name(kind: StoreKind, native: &str) -> Result<(), String> {
    let (max, allowed): (usize, fn(char) -> bool) = match kind {
        StoreKind::AwsSsm => (2048, |c| c.is_ascii_alphanumeric() || "_.-/".contains(c)),
        StoreKind::AwsAsm => (512, |c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)),
        StoreKind::HashicorpVault => (4096, |c| !c.is_control()),
        StoreKind::AzureKeyVault => (127, |c| c.is_ascii_alphanumeric() || c == '-'),
        StoreKind::GcpSecretManager => (255, |c| c.is_ascii_alphanumeric() || "_-".contains(c)),
    };
    if native.is_empty() {
        return Err(format!("{kind} would get an empty name"));
    }
    if native.len() > max {
        return Err(format!(
            "{kind} name {native:?} is {} characters long; the limit is {max}",
            native.len()
        ));
    }
    if let Some(bad) = native.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "{kind} name {native:?} contains {bad:?}, which {kind} does not allow"
        ));
    }
    Ok(())
}

/// Rejects a stack or component name that could leave a directory or forge another coordinate:
/// empty, NUL or control characters, backslashes, absolute paths, `.` or `..` segments.
pub fn check_path_part(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{what} {value:?} contains a NUL or control character"
        ));
    }
    if value.contains('\\') {
        return Err(format!("{what} {value:?} contains a backslash"));
    }
    if value.starts_with('/') {
        return Err(format!("{what} {value:?} is an absolute path"));
    }
    if value
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "{what} {value:?} has an empty, `.` or `..` path segment"
        ));
    }
    Ok(())
}

/// Rejects a key (a secret name or `reference`) that could forge another coordinate or clash
/// with SOPS metadata: empty, control characters, `/` or `\`, `.`/`..`, or `sops`.
pub fn check_key(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{what} {value:?} contains a NUL or control character"
        ));
    }
    if value.contains('/') || value.contains('\\') {
        return Err(format!(
            "{what} {value:?} contains a path separator, which would reach into another coordinate"
        ));
    }
    if value == "." || value == ".." {
        return Err(format!("{what} {value:?} is not a valid key"));
    }
    if value == "sops" {
        return Err(format!(
            "{what} \"sops\" is reserved: SOPS keeps its metadata under that top-level key"
        ));
    }
    Ok(())
}

/// The SOPS file of a scope when the provider has no `spec.file`: `<dir>/<stack>.enc.yaml` for
/// stack scope, `<dir>/<stack>.<component>.enc.yaml` for instance scope; `None` for global scope,
/// which needs a `spec.file`.
pub fn default_sops_file(
    dir: &Path,
    stack: Option<&str>,
    component: Option<&str>,
) -> Option<PathBuf> {
    let stack = stack?;
    Some(match component {
        Some(c) => dir.join(format!("{stack}.{c}.enc.yaml")),
        None => dir.join(format!("{stack}.enc.yaml")),
    })
}

/// Whether `path` stays inside `root` without any `..`: both are compared lexically, so a
/// rendered file name cannot climb out of the directory it belongs to.
pub fn stays_inside(root: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(root) else {
        return false;
    };
    rest.components().all(|c| matches!(c, Component::Normal(_)))
        && rest.components().next().is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn coord(stack: Option<&str>, component: Option<&str>, key: &str) -> Coordinate {
        Coordinate {
            stack: stack.map(str::to_string),
            component: component.map(str::to_string),
            key: key.to_string(),
        }
    }

    fn naming(kind: StoreKind, prefix: &str) -> Naming {
        Naming {
            prefix: prefix.to_string(),
            stack_delimiter: kind.default_stack_delimiter().to_string(),
        }
    }

    #[test]
    fn ssm_names_per_scope() {
        let n = naming(StoreKind::AwsSsm, "");
        let k = StoreKind::AwsSsm;
        assert_eq!(
            native_name(k, &n, &coord(Some("acme-ue1-dev"), Some("vpc"), "DB")),
            "/acme/ue1/dev/vpc/DB"
        );
        assert_eq!(
            native_name(k, &n, &coord(Some("acme-ue1-dev"), None, "DB")),
            "/acme/ue1/dev/DB"
        );
        assert_eq!(native_name(k, &n, &coord(None, None, "DB")), "/DB");
        let p = naming(k, "/atmos/");
        assert_eq!(
            native_name(k, &p, &coord(Some("a-b"), Some("x/y"), "K")),
            "/atmos/a/b/x/y/K"
        );
    }

    #[test]
    fn vault_names_use_slash_delimiter_and_no_leading_slash() {
        let k = StoreKind::HashicorpVault;
        let n = naming(k, "");
        assert_eq!(
            native_name(k, &n, &coord(Some("acme/dev"), Some("vpc"), "K")),
            "acme/dev/vpc/K"
        );
        assert_eq!(native_name(k, &n, &coord(None, None, "K")), "K");
    }

    #[test]
    fn gcp_names() {
        let k = StoreKind::GcpSecretManager;
        let n = naming(k, "atmos");
        assert_eq!(
            native_name(k, &n, &coord(Some("acme-dev"), Some("eks/cluster"), "K")),
            "atmos_acme_dev_eks_cluster_K"
        );
        assert_eq!(native_name(k, &naming(k, ""), &coord(None, None, "K")), "K");
    }

    #[test]
    fn azure_names() {
        let k = StoreKind::AzureKeyVault;
        let n = naming(k, "");
        assert_eq!(
            native_name(k, &n, &coord(Some("acme-dev"), Some("app"), "DB_PASSWORD")),
            "acme-dev-app-DB-PASSWORD"
        );
        assert_eq!(native_name(k, &n, &coord(None, None, "K")), "K");
        assert_eq!(collision_key(k, "A-b"), collision_key(k, "a-B"));
    }

    #[test]
    fn native_name_rules() {
        assert!(check_native_name(StoreKind::GcpSecretManager, "a.b").is_err());
        assert!(check_native_name(StoreKind::AzureKeyVault, &"a".repeat(128)).is_err());
        assert!(check_native_name(StoreKind::AwsSsm, "/a/b_c.d-e").is_ok());
    }

    #[test]
    fn escapes_are_rejected() {
        for bad in ["", "../x", "a/../b", "/abs", "a\0b", "a\\b", "a//b", "./a"] {
            assert!(check_path_part("stack", bad).is_err(), "{bad:?}");
        }
        assert!(check_path_part("stack", "orgs/acme/dev").is_ok());
        for bad in ["", "a/b", "..", "sops", "x\0"] {
            assert!(check_key("name", bad).is_err(), "{bad:?}");
        }
        assert!(stays_inside(
            Path::new("/b/s"),
            Path::new("/b/s/x.enc.yaml")
        ));
        assert!(!stays_inside(Path::new("/b/s"), Path::new("/b/s/../x")));
        assert!(!stays_inside(Path::new("/b/s"), Path::new("/b/x")));
    }
}
