//! The resolution layer against the contract (`shared/design/scopes.md`): a realistic fixture
//! tree, then one small tree per rule.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use atmos_provider::resolve::{
    Backend, ConfigError, Coordinate, LoadOptions, ResolveError, Scope, StoreKind, Workspace,
};
use atmos_provider::store::Location;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resolve")
}

fn load_fixture() -> Workspace {
    Workspace::load(&LoadOptions {
        cli_config_path: Some(fixture()),
        base_path: None,
        working_dir: fixture(),
    })
    .unwrap_or_else(|e| panic!("fixture must load: {e}"))
}

fn coord(stack: Option<&str>, component: Option<&str>, key: &str) -> Coordinate {
    Coordinate {
        stack: stack.map(str::to_string),
        component: component.map(str::to_string),
        key: key.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The fixture tree

#[test]
fn fixture_stacks_are_named_by_pattern_and_by_name() {
    let ws = load_fixture();
    assert_eq!(
        ws.stack_names(),
        [
            "core-ue2-dev",
            "core-ue2-prod",
            "core-uw2-dev",
            "core-west-production",
            "plat-ue2-dev",
            "plat-ue2-prod",
            "plat-uw2-dev",
            "plat-uw2-prod",
        ]
    );
    // _defaults.yaml is excluded; abstract bases are not listed as components.
    assert_eq!(
        ws.components("plat-ue2-dev").unwrap(),
        ["app", "rds", "vpc"]
    );
}

#[test]
fn fixture_stack_accepts_logical_name_or_manifest_path() {
    let ws = load_fixture();
    for spelling in [
        "plat-ue2-dev",
        "orgs/acme/plat/ue2/dev",
        "orgs/acme/plat/ue2/dev.yaml",
    ] {
        let s = ws.resolve(spelling, None, "SLACK_WEBHOOK").unwrap();
        assert_eq!(s.stack, "plat-ue2-dev", "{spelling}");
    }
    let abs = fixture().join("stacks/orgs/acme/core/uw2/prod.yaml");
    assert_eq!(
        ws.stack_name(abs.to_str().unwrap()).unwrap(),
        "core-west-production"
    );
}

#[test]
fn fixture_global_secret_is_one_value_everywhere() {
    let ws = load_fixture();
    let a = ws
        .resolve("plat-ue2-dev", Some("vpc"), "DATADOG_API_KEY")
        .unwrap();
    let b = ws.resolve("core-uw2-dev", None, "DATADOG_API_KEY").unwrap();
    assert_eq!(a.scope, Scope::Global);
    assert_eq!(a.coordinate, coord(None, None, "DATADOG_API_KEY"));
    assert_eq!(a.location, Location::Named("/atmos/DATADOG_API_KEY".into()));
    assert_eq!(a.location, b.location);
    assert!(a.required);
    assert_eq!(a.scope.to_string(), "global");
}

#[test]
fn fixture_stack_secret_on_sops_uses_the_stack_file() {
    let ws = load_fixture();
    let s = ws
        .resolve("plat-ue2-dev", Some("vpc"), "SLACK_WEBHOOK")
        .unwrap();
    assert_eq!(s.scope, Scope::Stack);
    assert_eq!(s.component.as_deref(), Some("vpc"));
    assert_eq!(
        s.coordinate,
        coord(Some("plat-ue2-dev"), None, "SLACK_WEBHOOK")
    );
    assert_eq!(
        s.location,
        Location::SopsKey {
            file: fixture().join("secrets/plat-ue2-dev.enc.yaml"),
            key: "SLACK_WEBHOOK".into()
        }
    );
    assert_eq!(
        s.backend,
        Backend::Sops {
            provider: "local".into()
        }
    );
    let p = s.sops.as_ref().unwrap();
    assert_eq!(
        p.age_key_file.as_deref(),
        Some(fixture().join("keys/age.txt").as_path())
    );
    assert_eq!(p.age_recipients.len(), 1);
}

#[test]
fn fixture_pull_down_gives_the_component_its_own_value() {
    let ws = load_fixture();
    let s = ws
        .resolve("plat-ue2-dev", Some("app"), "SLACK_WEBHOOK")
        .unwrap();
    assert_eq!(s.scope, Scope::Instance);
    // The short re-declaration keeps the stack entry's description and backend.
    assert_eq!(
        s.description.as_deref(),
        Some("Alerts webhook of this stack")
    );
    assert_eq!(
        s.location,
        Location::SopsKey {
            file: fixture().join("secrets/plat-ue2-dev.app.enc.yaml"),
            key: "SLACK_WEBHOOK".into()
        }
    );
    // ...for that component only.
    let other = ws
        .resolve("plat-ue2-dev", Some("rds"), "SLACK_WEBHOOK")
        .unwrap();
    assert_eq!(other.scope, Scope::Stack);
}

#[test]
fn fixture_inherits_in_order_and_the_instance_wins() {
    let ws = load_fixture();
    let log = ws
        .resolve("core-ue2-dev", Some("app"), "LOG_TOKEN")
        .unwrap();
    assert_eq!(
        log.description.as_deref(),
        Some("from app-logging (later in inherits, so it wins)")
    );
    assert_eq!(log.scope, Scope::Instance);
    assert_eq!(
        log.location,
        Location::Named("atmos_core_ue2_dev_app_LOG_TOKEN".into())
    );
    assert_eq!(
        log.backend,
        Backend::Store {
            name: "gsm".into(),
            kind: StoreKind::GcpSecretManager
        }
    );
    let api = ws
        .resolve("core-ue2-dev", Some("app"), "API_TOKEN")
        .unwrap();
    assert_eq!(
        api.backend,
        Backend::Sops {
            provider: "local".into()
        }
    );
    assert_eq!(api.description.as_deref(), Some("from app-base"));
}

#[test]
fn fixture_abstract_base_declares_for_its_instances() {
    let ws = load_fixture();
    let s = ws
        .resolve("plat-uw2-prod", Some("rds"), "DB_PASSWORD")
        .unwrap();
    assert_eq!(s.scope, Scope::Instance);
    assert_eq!(
        s.location,
        Location::Named("/atmos/plat/uw2/prod/rds/DB_PASSWORD".into())
    );
    let err = ws
        .resolve("plat-uw2-prod", Some("rds-defaults"), "DB_PASSWORD")
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::AbstractComponent { .. }),
        "{err}"
    );
    // The stack manifest may refine what the catalog declared.
    let prod = ws
        .resolve("plat-ue2-prod", Some("rds"), "DB_PASSWORD")
        .unwrap();
    assert_eq!(
        prod.description.as_deref(),
        Some("Production master password")
    );
    assert!(prod.required);
    assert!(
        prod.origin.file.ends_with("orgs/acme/plat/ue2/prod.yaml"),
        "{}",
        prod.origin
    );
}

#[test]
fn fixture_every_backend_names_per_the_contract() {
    let ws = load_fixture();
    let akv = ws
        .resolve("plat-ue2-prod", Some("vpc"), "FLOW_LOG_KEY")
        .unwrap();
    assert_eq!(
        akv.location,
        Location::Named("plat-ue2-prod-vpc-FLOW-LOG-KEY".into())
    );
    let asm = ws
        .resolve("plat-ue2-prod", Some("vpc"), "PEERING_TOKEN")
        .unwrap();
    assert_eq!(
        asm.coordinate.key, "vpc_peering_token",
        "reference replaces the name"
    );
    assert_eq!(
        asm.location,
        Location::Named("/plat/ue2/prod/vpc/vpc_peering_token".into())
    );
    let vault = ws
        .resolve("core-uw2-dev", Some("app"), "API_TOKEN")
        .unwrap();
    assert_eq!(
        vault.backend,
        Backend::Sops {
            provider: "local".into()
        }
    );
    let shared = ws.resolve("core-uw2-dev", None, "SHARED_LICENSE").unwrap();
    assert_eq!(
        shared.location,
        Location::SopsKey {
            file: fixture().join("secrets/shared/global.enc.yaml"),
            key: "SHARED_LICENSE".into()
        }
    );
}

#[test]
fn fixture_declared_lists_everything_visible_sorted() {
    let ws = load_fixture();
    let names: Vec<String> = ws
        .declared("plat-ue2-dev", Some("app"))
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "API_TOKEN",
            "DATADOG_API_KEY",
            "LOG_TOKEN",
            "SHARED_LICENSE",
            "SLACK_WEBHOOK"
        ]
    );
    let stack_only: Vec<String> = ws
        .declared("plat-ue2-dev", None)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        stack_only,
        ["DATADOG_API_KEY", "SHARED_LICENSE", "SLACK_WEBHOOK"]
    );
}

#[test]
fn fixture_unknown_names_suggest_the_closest() {
    let ws = load_fixture();
    let err = ws.resolve("plat-ue2-dve", None, "X").unwrap_err();
    match &err {
        ResolveError::UnknownStack { closest, .. } => {
            assert_eq!(closest.first().map(String::as_str), Some("plat-ue2-dev"))
        }
        other => panic!("{other}"),
    }
    let err = ws.resolve("plat-ue2-dev", Some("ap"), "X").unwrap_err();
    assert!(err.to_string().contains("\"app\""), "{err}");
    let err = ws
        .resolve("plat-ue2-dev", Some("app"), "SLACK_WEBHOK")
        .unwrap_err();
    match &err {
        ResolveError::Undeclared {
            declared, closest, ..
        } => {
            assert_eq!(declared.len(), 5);
            assert_eq!(closest.as_deref(), Some("SLACK_WEBHOOK"));
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(text.contains("did you mean \"SLACK_WEBHOOK\""), "{text}");
    assert!(text.contains("API_TOKEN, DATADOG_API_KEY"), "{text}");
}

#[test]
fn fixture_write_rule() {
    let ws = load_fixture();
    // Still stack-scoped at rds: a write naming rds is refused.
    let err = ws
        .check_write("plat-ue2-dev", Some("rds"), "SLACK_WEBHOOK")
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::StackScopedWrite { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("components.terraform.rds.secrets.vars"),
        "{err}"
    );
    // Without a component, or where it was pulled down, the write is fine.
    assert_eq!(
        ws.check_write("plat-ue2-dev", None, "SLACK_WEBHOOK")
            .unwrap()
            .scope,
        Scope::Stack
    );
    assert_eq!(
        ws.check_write("plat-ue2-dev", Some("app"), "SLACK_WEBHOOK")
            .unwrap()
            .scope,
        Scope::Instance
    );
    // Global secrets may be written from anywhere.
    assert!(
        ws.check_write("plat-ue2-dev", Some("rds"), "DATADOG_API_KEY")
            .is_ok()
    );
}

#[test]
fn fixture_stores_and_warnings() {
    let ws = load_fixture();
    assert_eq!(ws.store("asm").unwrap().kind, StoreKind::AwsAsm);
    assert_eq!(ws.store("gsm").unwrap().kind, StoreKind::GcpSecretManager);
    assert!(!ws.store("outputs").unwrap().secret);
    assert!(ws.store("nope").is_none());
    assert!(ws.warnings().is_empty(), "{:?}", ws.warnings());
    assert_eq!(ws.sops_providers().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// One small tree per rule

const ATMOS: &str = r#"
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  excluded_paths: ["**/_defaults.yaml", "catalog/**/*"]
stores:
  ssm: { kind: aws/ssm, secret: true, options: { region: us-east-1 } }
  asm: { kind: aws/asm, secret: true }
  vault: { kind: hashicorp/vault, secret: true, options: { mount: secret } }
  akv: { kind: azure/keyvault, secret: true }
  gsm: { kind: gcp/secretmanager, secret: true }
  outputs: { kind: aws/ssm }
secrets:
  providers:
    local: { kind: sops/age, spec: { age_recipients: age1abc } }
"#;

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<(&str, &str)> = files.to_vec();
        if !files.iter().any(|(p, _)| *p == "atmos.yaml") {
            files.push(("atmos.yaml", ATMOS));
        }
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Tree { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            cli_config_path: None,
            base_path: None,
            working_dir: self.path().to_path_buf(),
        }
    }

    fn load(&self) -> Result<Workspace, ConfigError> {
        Workspace::load(&self.opts())
    }

    fn ok(&self) -> Workspace {
        self.load().unwrap_or_else(|e| panic!("should load: {e}"))
    }

    fn err(&self) -> String {
        match self.load() {
            Ok(_) => panic!("should not load"),
            Err(e) => e.to_string(),
        }
    }
}

fn load(files: &[(&str, &str)]) -> Workspace {
    Tree::new(files).ok()
}

fn load_err(files: &[(&str, &str)]) -> String {
    Tree::new(files).err()
}

#[test]
fn config_is_found_in_a_parent_of_the_working_dir() {
    let t = Tree::new(&[("stacks/dev.yaml", "vars: {}"), ("deep/er/x.txt", "")]);
    let mut opts = t.opts();
    opts.working_dir = t.path().join("deep/er");
    let ws = Workspace::load(&opts).unwrap();
    assert_eq!(ws.stack_names(), ["dev"]);
}

#[test]
fn config_path_may_be_a_dir_or_the_file_and_must_exist() {
    let t = Tree::new(&[
        (
            "conf/atmos.yaml",
            "base_path: ..\nstacks: { base_path: stacks }",
        ),
        ("stacks/a.yaml", ""),
    ]);
    for p in [t.path().join("conf"), t.path().join("conf/atmos.yaml")] {
        let ws = Workspace::load(&LoadOptions {
            cli_config_path: Some(p),
            base_path: None,
            working_dir: PathBuf::from("/"),
        })
        .unwrap();
        // base_path is relative to the directory of atmos.yaml.
        assert_eq!(ws.config().base_path, t.path());
        assert_eq!(ws.stack_names(), ["a"]);
    }
    let err = Workspace::load(&LoadOptions {
        cli_config_path: Some(t.path().join("nowhere")),
        base_path: None,
        working_dir: t.path().to_path_buf(),
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[test]
fn base_path_option_overrides_the_file() {
    let t = Tree::new(&[
        (
            "atmos.yaml",
            "base_path: wrong\nstacks: { base_path: stacks }",
        ),
        ("right/stacks/a.yaml", ""),
    ]);
    let mut opts = t.opts();
    opts.base_path = Some(PathBuf::from("right"));
    let ws = Workspace::load(&opts).unwrap();
    assert_eq!(ws.config().base_path, t.path().join("right"));
    assert_eq!(ws.stack_names(), ["a"]);
}

#[test]
fn from_env_prefers_attributes_then_environment() {
    let o = LoadOptions::from_env(Some(PathBuf::from("/x")), Some(PathBuf::from("/y")));
    assert_eq!(o.cli_config_path.as_deref(), Some(Path::new("/x")));
    assert_eq!(o.base_path.as_deref(), Some(Path::new("/y")));
    assert_eq!(o.working_dir, std::env::current_dir().unwrap());
}

#[test]
fn yaml_errors_name_file_line_and_column() {
    let err = load_err(&[("stacks/dev.yaml", "vars:\n  a: 1\n  b: [1, 2\n")]);
    assert!(err.contains("stacks/dev.yaml:"), "{err}");
    let after = err.split("dev.yaml:").nth(1).unwrap();
    let mut parts = after.split(':');
    let line: usize = parts.next().unwrap().parse().unwrap();
    let col: usize = parts.next().unwrap().parse().unwrap();
    assert!(line >= 3 && col >= 1, "{err}");
}

#[test]
fn store_kinds_and_legacy_types() {
    let yaml = r#"
stacks: { base_path: stacks }
stores:
  a: { type: aws-ssm-parameter-store }
  b: { type: aws-secrets-manager }
  c: { type: hashicorp-vault }
  d: { type: azure-key-vault }
  e: { type: google-secret-manager }
  f: { type: gsm }
  g: { kind: gcp/secretmanager, options: { project_id: p, colour: blue } }
"#;
    let ws = load(&[("atmos.yaml", yaml), ("stacks/a.yaml", "")]);
    let kinds: Vec<StoreKind> = ws.stores().map(|s| s.kind).collect();
    use StoreKind::*;
    assert_eq!(
        kinds,
        [
            AwsSsm,
            AwsAsm,
            HashicorpVault,
            AzureKeyVault,
            GcpSecretManager,
            GcpSecretManager,
            GcpSecretManager
        ]
    );
    assert!(
        ws.warnings()
            .iter()
            .any(|w| w.contains("stores.g.options.colour")),
        "{:?}",
        ws.warnings()
    );
    let err = load_err(&[
        ("atmos.yaml", "stores: { x: { kind: aws/parameter-store } }"),
        ("stacks/a.yaml", ""),
    ]);
    assert!(
        err.contains("stores.x.kind") && err.contains("aws/ssm"),
        "{err}"
    );
}

#[test]
fn imports_relative_extensionless_globbed_and_optional() {
    let ws = load(&[
        (
            "stacks/catalog/a.yaml",
            "vars: {x: a, list: [1, 2]}\nsecrets: {vars: {A: {store: ssm}}}",
        ),
        (
            "stacks/catalog/b.yml",
            "vars: {x: b}\nsecrets: {vars: {B: {store: ssm}}}",
        ),
        (
            "stacks/team/_defaults.yaml",
            "import: [catalog/*]\nvars: {team: t}",
        ),
        (
            "stacks/team/dev.yaml",
            "import:\n  - ./_defaults\n  - path: catalog/missing\n    skip_if_missing: true\nvars: {list: [3]}\nsecrets: {vars: {C: {store: ssm}}}",
        ),
    ]);
    let names: Vec<String> = ws
        .declared("team/dev", None)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
}

#[test]
fn imports_merge_in_order_with_the_importer_last() {
    let ws = load(&[
        (
            "stacks/catalog/one.yaml",
            "secrets: {vars: {X: {store: ssm, description: one, required: true}}}",
        ),
        (
            "stacks/catalog/two.yaml",
            "secrets: {vars: {X: {description: two}}}",
        ),
        (
            "stacks/dev.yaml",
            "import: [catalog/one, catalog/two]\nsecrets: {vars: {X: {store: gsm}}}",
        ),
        ("stacks/prod.yaml", "import: [catalog/two, catalog/one]"),
    ]);
    let dev = ws.resolve("dev", None, "X").unwrap();
    assert_eq!(dev.description.as_deref(), Some("two"));
    assert!(dev.required, "maps merge");
    assert!(matches!(dev.backend, Backend::Store { ref name, .. } if name == "gsm"));
    assert!(dev.origin.file.ends_with("stacks/dev.yaml"));
    let prod = ws.resolve("prod", None, "X").unwrap();
    assert_eq!(prod.description.as_deref(), Some("one"));
}

#[test]
fn missing_import_is_an_error_naming_the_file() {
    let err = load_err(&[("stacks/dev.yaml", "import: [catalog/nope]")]);
    assert!(
        err.contains("stacks/dev.yaml: import[0]") && err.contains("skip_if_missing"),
        "{err}"
    );
    let err = load_err(&[("stacks/dev.yaml", "import: [catalog/*]")]);
    assert!(err.contains("matches no manifest"), "{err}");
}

#[test]
fn import_cycles_are_reported() {
    let err = load_err(&[
        ("stacks/catalog/a.yaml", "import: [catalog/b]"),
        ("stacks/catalog/b.yaml", "import: [catalog/a]"),
        ("stacks/dev.yaml", "import: [catalog/a]"),
    ]);
    assert!(err.contains("import cycle"), "{err}");
}

#[test]
fn stack_name_order_name_then_template_then_pattern_then_path() {
    let files = |atmos: &'static str| {
        vec![
            ("atmos.yaml", atmos),
            (
                "stacks/a/dev.yaml",
                "vars: {tenant: t1, environment: ue1, stage: dev}\nsecrets: {vars: {X: {store: ssm}}}",
            ),
            (
                "stacks/b.yaml",
                "name: named\nvars: {tenant: t2, environment: ue1, stage: prod}",
            ),
        ]
    };
    let stores = "stores: { ssm: { kind: aws/ssm, secret: true } }\n";
    let plain = format!("{stores}stacks: {{ base_path: stacks }}");
    let ws = load(&files(Box::leak(plain.into_boxed_str())));
    assert_eq!(ws.stack_names(), ["a/dev", "named"]);
    let pattern = format!(
        "{stores}stacks: {{ base_path: stacks, name_pattern: '{{tenant}}-{{environment}}-{{stage}}' }}"
    );
    let ws = load(&files(Box::leak(pattern.into_boxed_str())));
    assert_eq!(ws.stack_names(), ["named", "t1-ue1-dev"]);
    let template = format!(
        "{stores}stacks: {{ base_path: stacks, name_pattern: 'ignored-{{stage}}', name_template: '{{{{ .vars.tenant }}}}_{{{{ .vars.stage }}}}' }}"
    );
    let ws = load(&files(Box::leak(template.into_boxed_str())));
    assert_eq!(ws.stack_names(), ["named", "t1_dev"]);
    assert_eq!(ws.resolve("a/dev", None, "X").unwrap().stack, "t1_dev");
}

#[test]
fn name_template_errors_are_clear() {
    let atmos = "stacks: { base_path: stacks, name_template: '{{ .vars.tenant | upper }}' }";
    let err = load_err(&[
        ("atmos.yaml", atmos),
        ("stacks/a.yaml", "vars: {tenant: t}"),
    ]);
    assert!(
        err.contains("stacks.name_template") && err.contains("Sprig"),
        "{err}"
    );
    // A manifest the pattern cannot name is an error when it has components or declarations.
    let atmos = "stacks: { base_path: stacks, name_pattern: '{tenant}-{stage}' }";
    let err = load_err(&[
        ("atmos.yaml", atmos),
        (
            "stacks/a.yaml",
            "vars: {tenant: t}\ncomponents: {terraform: {vpc: {}}}",
        ),
    ]);
    assert!(err.contains("needs vars.stage"), "{err}");
}

#[test]
fn duplicate_stack_names_are_an_error() {
    let err = load_err(&[
        ("stacks/a.yaml", "name: same"),
        ("stacks/b.yaml", "name: same"),
    ]);
    assert!(err.contains("must be unique"), "{err}");
}

#[test]
fn stack_level_declaration_is_stack_scoped() {
    let ws = load(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm}}}\ncomponents: {terraform: {c: {}}}",
    )]);
    for comp in [None, Some("c")] {
        let s = ws.resolve("dev", comp, "X").unwrap();
        assert_eq!(s.scope, Scope::Stack);
        assert_eq!(s.coordinate, coord(Some("dev"), None, "X"));
        assert_eq!(s.location, Location::Named("/dev/X".into()));
    }
}

#[test]
fn component_declaration_is_instance_scoped_and_invisible_to_the_stack() {
    let ws = load(&[(
        "stacks/dev.yaml",
        "components: {terraform: {c: {secrets: {vars: {X: {store: ssm}}}}, d: {}}}",
    )]);
    let s = ws.resolve("dev", Some("c"), "X").unwrap();
    assert_eq!(s.scope, Scope::Instance);
    assert_eq!(s.coordinate, coord(Some("dev"), Some("c"), "X"));
    assert!(matches!(
        ws.resolve("dev", None, "X"),
        Err(ResolveError::Undeclared { .. })
    ));
    assert!(matches!(
        ws.resolve("dev", Some("d"), "X"),
        Err(ResolveError::Undeclared { .. })
    ));
}

#[test]
fn explicit_scope_conflicts_are_errors() {
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm, scope: instance}}}",
    )]);
    assert!(
        err.contains("secrets.vars.X.scope") && err.contains("top level"),
        "{err}"
    );
    let err = load_err(&[(
        "stacks/dev.yaml",
        "components: {terraform: {c: {secrets: {vars: {X: {store: ssm, scope: stack}}}}}}",
    )]);
    assert!(
        err.contains("components.terraform.c.secrets.vars.X.scope")
            && err.contains("never stack-scoped"),
        "{err}"
    );
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm, scope: galaxy}}}",
    )]);
    assert!(err.contains("unknown scope"), "{err}");
    // Explicit scopes that agree with the position are fine.
    let ws = load(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm, scope: stack}}}\ncomponents: {terraform: {c: {secrets: {vars: {Y: {store: ssm, scope: instance}, X: {}}}}}}",
    )]);
    assert_eq!(
        ws.resolve("dev", Some("c"), "X").unwrap().scope,
        Scope::Instance
    );
}

#[test]
fn global_scope_is_allowed_anywhere() {
    let ws = load(&[
        (
            "stacks/a.yaml",
            "components: {terraform: {c: {secrets: {vars: {G: {store: ssm, scope: global}}}}}}",
        ),
        (
            "stacks/b.yaml",
            "secrets: {vars: {G: {store: ssm, scope: global}}}",
        ),
    ]);
    let a = ws.resolve("a", Some("c"), "G").unwrap();
    let b = ws.resolve("b", None, "G").unwrap();
    assert_eq!(a.scope, Scope::Global);
    assert_eq!(a.location, b.location);
    assert_eq!(a.location, Location::Named("/G".into()));
}

#[test]
fn exactly_one_of_store_and_sops() {
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm, sops: local}}}",
    )]);
    assert!(err.contains("both"), "{err}");
    let err = load_err(&[("stacks/dev.yaml", "secrets: {vars: {X: {description: d}}}")]);
    assert!(err.contains("neither"), "{err}");
}

#[test]
fn only_secret_stores_hold_declarations() {
    let err = load_err(&[("stacks/dev.yaml", "secrets: {vars: {X: {store: outputs}}}")]);
    assert!(err.contains("secret: true"), "{err}");
    let err = load_err(&[("stacks/dev.yaml", "secrets: {vars: {X: {store: sm}}}")]);
    assert!(
        err.contains("not defined") && err.contains("did you mean \"ssm\""),
        "{err}"
    );
    let err = load_err(&[("stacks/dev.yaml", "secrets: {vars: {X: {sops: locl}}}")]);
    assert!(err.contains("did you mean \"local\""), "{err}");
}

#[test]
fn inherits_are_ordered_and_checked() {
    let ws = load(&[(
        "stacks/dev.yaml",
        r#"
components:
  terraform:
    base1: {metadata: {type: abstract}, secrets: {vars: {X: {store: ssm, description: one}}}}
    base2: {metadata: {type: abstract, inherits: [base1]}, secrets: {vars: {X: {description: two}}}}
    c: {metadata: {inherits: [base1, base2]}}
    d: {metadata: {inherits: [base2, base1]}}
"#,
    )]);
    assert_eq!(
        ws.resolve("dev", Some("c"), "X")
            .unwrap()
            .description
            .as_deref(),
        Some("two")
    );
    // base2 pulls in base1 first, so base1's later mention does not re-apply it.
    assert_eq!(
        ws.resolve("dev", Some("d"), "X")
            .unwrap()
            .description
            .as_deref(),
        Some("two")
    );
    let err = load_err(&[(
        "stacks/dev.yaml",
        "components: {terraform: {c: {metadata: {inherits: [bse]}}, base: {}}}",
    )]);
    assert!(
        err.contains("inherits \"bse\"") && err.contains("base"),
        "{err}"
    );
    let err = load_err(&[(
        "stacks/dev.yaml",
        "components: {terraform: {a: {metadata: {inherits: [b]}}, b: {metadata: {inherits: [a]}}}}",
    )]);
    assert!(err.contains("inheritance cycle"), "{err}");
}

#[test]
fn overrides_apply_to_the_instances() {
    let ws = load(&[(
        "stacks/dev.yaml",
        "components: {terraform: {c: {secrets: {vars: {X: {store: ssm, description: own}}}}}}\noverrides: {secrets: {vars: {X: {description: overridden}}}}",
    )]);
    assert_eq!(
        ws.resolve("dev", Some("c"), "X")
            .unwrap()
            .description
            .as_deref(),
        Some("overridden")
    );
}

#[test]
fn coordinates_per_backend() {
    let ws = load(&[(
        "stacks/acme-dev.yaml",
        r#"
components:
  terraform:
    eks/cluster:
      secrets:
        vars:
          SSM: {store: ssm}
          ASM: {store: asm}
          VAULT: {store: vault}
          AKV_KEY: {store: akv}
          GSM: {store: gsm}
          SOPS: {sops: local}
"#,
    )]);
    let loc = |n: &str| {
        ws.resolve("acme-dev", Some("eks/cluster"), n)
            .unwrap()
            .location
    };
    assert_eq!(
        loc("SSM"),
        Location::Named("/acme/dev/eks/cluster/SSM".into())
    );
    assert_eq!(
        loc("ASM"),
        Location::Named("/acme/dev/eks/cluster/ASM".into())
    );
    assert_eq!(
        loc("VAULT"),
        Location::Named("acme-dev/eks/cluster/VAULT".into())
    );
    assert_eq!(
        loc("AKV_KEY"),
        Location::Named("acme-dev-eks-cluster-AKV-KEY".into())
    );
    assert_eq!(
        loc("GSM"),
        Location::Named("acme_dev_eks_cluster_GSM".into())
    );
    let t = ws.config().base_path.clone();
    assert_eq!(
        loc("SOPS"),
        Location::SopsKey {
            file: t.join("secrets/acme-dev.eks/cluster.enc.yaml"),
            key: "SOPS".into()
        }
    );
}

#[test]
fn every_scope_on_every_store() {
    let mut decls = String::from("secrets:\n  vars:\n");
    let mut comp = String::new();
    for store in ["ssm", "asm", "vault", "akv", "gsm"] {
        decls.push_str(&format!("    {store}_stack: {{store: {store}}}\n    {store}_global: {{store: {store}, scope: global}}\n"));
        comp.push_str(&format!("          {store}_inst: {{store: {store}}}\n"));
    }
    let doc =
        format!("{decls}components:\n  terraform:\n    c:\n      secrets:\n        vars:\n{comp}");
    let ws = load(&[("stacks/dev.yaml", &doc)]);
    for store in ["ssm", "asm", "vault", "akv", "gsm"] {
        for (name, scope) in [
            ("stack", Scope::Stack),
            ("global", Scope::Global),
            ("inst", Scope::Instance),
        ] {
            let s = ws
                .resolve("dev", Some("c"), &format!("{store}_{name}"))
                .unwrap();
            assert_eq!(s.scope, scope);
            let Location::Named(n) = &s.location else {
                panic!()
            };
            assert!(!n.is_empty());
        }
    }
    // Vault and Azure work without a stack or component (Atmos refuses those).
    assert_eq!(
        ws.resolve("dev", None, "vault_global").unwrap().location,
        Location::Named("vault_global".into())
    );
    assert_eq!(
        ws.resolve("dev", None, "akv_global").unwrap().location,
        Location::Named("akv-global".into())
    );
}

#[test]
fn sops_global_needs_a_file_template() {
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {G: {sops: local, scope: global}}}",
    )]);
    assert!(
        err.contains("needs spec.file") && err.contains("secrets.vars.G"),
        "{err}"
    );
    let atmos = r#"
stacks: { base_path: stacks }
secrets:
  providers:
    local:
      kind: sops/age
      spec: { file: "vault/{{ .scope }}/{{ if .stack }}{{ .stack }}{{ else }}all{{ end }}.enc.yaml" }
"#;
    let t = Tree::new(&[
        ("atmos.yaml", atmos),
        (
            "stacks/dev.yaml",
            "secrets: {vars: {G: {sops: local, scope: global}}}",
        ),
    ]);
    let ws = t.ok();
    assert_eq!(
        ws.resolve("dev", None, "G").unwrap().location,
        Location::SopsKey {
            file: t.path().join("vault/global/all.enc.yaml"),
            key: "G".into()
        }
    );
}

#[test]
fn sops_path_is_relative_to_the_base_path_and_narrower_providers_win() {
    let t = Tree::new(&[(
        "stacks/dev.yaml",
        r#"
secrets:
  providers:
    local: {kind: sops/age, spec: {path: stack-secrets}}
  vars:
    S: {sops: local}
components:
  terraform:
    c:
      secrets:
        providers:
          local: {spec: {path: /abs/c-secrets}}
        vars:
          I: {sops: local}
    d: {}
"#,
    )]);
    let ws = t.ok();
    let base = t.path();
    assert_eq!(
        ws.resolve("dev", None, "S").unwrap().location,
        Location::SopsKey {
            file: base.join("stack-secrets/dev.enc.yaml"),
            key: "S".into()
        }
    );
    assert_eq!(
        ws.resolve("dev", Some("c"), "I").unwrap().location,
        Location::SopsKey {
            file: PathBuf::from("/abs/c-secrets/dev.c.enc.yaml"),
            key: "I".into()
        }
    );
    // The recipients from atmos.yaml survive the narrower definitions (merged, not replaced).
    let p = ws.sops_provider("dev", Some("c"), "local").unwrap();
    assert_eq!(p.age_recipients, ["age1abc"]);
    assert_eq!(
        ws.sops_provider("dev", Some("d"), "local")
            .unwrap()
            .base_dir,
        base.join("stack-secrets")
    );
}

#[test]
fn collisions_are_reported_with_both_declarations() {
    // GCP: stack "a-b" and stack "a_b" meet at a_b_X.
    let err = load_err(&[
        ("stacks/a-b.yaml", "secrets: {vars: {X: {store: gsm}}}"),
        ("stacks/a_b.yaml", "secrets: {vars: {X: {store: gsm}}}"),
    ]);
    assert!(
        err.contains("collision") && err.contains("a-b.yaml") && err.contains("a_b.yaml"),
        "{err}"
    );
    assert!(
        err.contains("(a-b, -, X)") && err.contains("(a_b, -, X)"),
        "{err}"
    );
    // Azure: A_B and A-B meet, and names differing only in case too.
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {A_B: {store: akv}, A-B: {store: akv}}}",
    )]);
    assert!(err.contains("collision"), "{err}");
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {ab: {store: akv}, AB: {store: akv}}}",
    )]);
    assert!(err.contains("collision"), "{err}");
    // SOPS: stack "x.c" and instance (x, c) share a file name.
    let err = load_err(&[
        (
            "stacks/x.yaml",
            "components: {terraform: {c: {secrets: {vars: {K: {sops: local}}}}}}",
        ),
        ("stacks/x.c.yaml", "secrets: {vars: {K: {sops: local}}}"),
    ]);
    assert!(err.contains("collision"), "{err}");
    // The same coordinate reached twice is not a collision.
    load(&[
        (
            "stacks/a.yaml",
            "secrets: {vars: {G: {store: akv, scope: global}}}",
        ),
        (
            "stacks/b.yaml",
            "secrets: {vars: {G: {store: akv, scope: global}}}",
        ),
    ]);
}

#[test]
fn escapes_are_rejected() {
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {\"../x\": {sops: local}}}",
    )]);
    assert!(err.contains("path separator"), "{err}");
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {sops: local, reference: \"a/b\"}}}",
    )]);
    assert!(err.contains("reference"), "{err}");
    let err = load_err(&[("stacks/dev.yaml", "secrets: {vars: {sops: {sops: local}}}")]);
    assert!(err.contains("reserved"), "{err}");
    let err = load_err(&[(
        "stacks/dev.yaml",
        "name: ../../etc\nsecrets: {vars: {X: {sops: local}}}",
    )]);
    assert!(err.contains("segment"), "{err}");
    let err = load_err(&[(
        "stacks/dev.yaml",
        "components: {terraform: {\"..\": {secrets: {vars: {X: {sops: local}}}}}}",
    )]);
    assert!(err.contains("segment"), "{err}");
    let atmos = r#"
stacks: { base_path: stacks }
secrets: { providers: { p: { kind: sops/age, spec: { file: "../outside/{{ .stack }}.yaml" } } } }
"#;
    let err = load_err(&[
        ("atmos.yaml", atmos),
        ("stacks/dev.yaml", "secrets: {vars: {X: {sops: p}}}"),
    ]);
    assert!(err.contains("leaves the base path"), "{err}");
}

#[test]
fn native_name_limits_are_checked_at_load() {
    let long = "K".repeat(130);
    let doc = format!("secrets: {{vars: {{{long}: {{store: akv}}}}}}");
    let err = load_err(&[("stacks/dev.yaml", &doc)]);
    assert!(err.contains("limit is 127"), "{err}");
    let err = load_err(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {\"a.b\": {store: gsm}}}",
    )]);
    assert!(err.contains("does not allow"), "{err}");
}

#[test]
fn several_problems_are_reported_together() {
    let err = Tree::new(&[
        ("stacks/a.yaml", "secrets: {vars: {X: {store: nope}}}"),
        (
            "stacks/b.yaml",
            "secrets: {vars: {Y: {store: ssm, scope: instance}}}",
        ),
    ])
    .load()
    .err()
    .unwrap();
    assert_eq!(err.iter().len(), 2, "{err}");
    assert!(matches!(err, ConfigError::Many(_)));
}

#[test]
fn unknown_declaration_fields_warn() {
    let ws = load(&[(
        "stacks/dev.yaml",
        "secrets: {vars: {X: {store: ssm, requried: true}}}",
    )]);
    assert!(
        ws.warnings()
            .iter()
            .any(|w| w.contains("secrets.vars.X.requried")),
        "{:?}",
        ws.warnings()
    );
}

#[test]
fn workspace_is_shared_across_threads() {
    let ws = std::sync::Arc::new(load_fixture());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let ws = ws.clone();
            std::thread::spawn(move || {
                let stack = ["plat-ue2-dev", "core-ue2-prod"][i % 2];
                ws.resolve(stack, Some("app"), "API_TOKEN").unwrap().stack
            })
        })
        .collect();
    let stacks: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        stacks,
        [
            "plat-ue2-dev",
            "core-ue2-prod",
            "plat-ue2-dev",
            "core-ue2-prod"
        ]
    );
}

#[test]
fn yaml_errors_in_imports_name_the_imported_file() {
    let err = load_err(&[
        (
            "stacks/catalog/bad.yaml",
            "components:\n  terraform:\n    vpc: {vars: [1,\n",
        ),
        ("stacks/dev.yaml", "import: [catalog/bad]"),
    ]);
    assert!(err.contains("stacks/catalog/bad.yaml:"), "{err}");
    assert!(!err.contains("dev.yaml"), "{err}");
}

#[test]
fn declarations_of_abstract_bases_are_checked_where_inherited() {
    let err = load_err(&[(
        "stacks/dev.yaml",
        "components: {terraform: {base: {metadata: {type: abstract}, secrets: {vars: {X: {store: ssm, scope: stack}}}}, c: {metadata: {inherits: [base]}}}}",
    )]);
    assert!(
        err.contains("components.terraform.base.secrets.vars.X.scope")
            && err.contains("never stack-scoped"),
        "{err}"
    );
    // A base that is never inherited may stay partial.
    load(&[(
        "stacks/dev.yaml",
        "components: {terraform: {base: {metadata: {type: abstract}, secrets: {vars: {X: {description: only}}}}}}",
    )]);
}
