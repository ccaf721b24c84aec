//! Runs every registry example against a copy of `examples/quickstart` with the real OpenTofu.
//!
//! Each `*.tf` file under `examples/{provider,data-sources,ephemeral-resources,resources}` is one
//! root module. It is found by walking those folders, so a new example is tested without touching
//! this file. For each one:
//!
//! - `tofu fmt -check` on the file as committed;
//! - a fresh workspace gets a copy of the quickstart (stack `prod`, component `api`,
//!   `DATADOG_API_KEY` stack-scoped, `DB_PASSWORD` instance-scoped, SOPS files and age key) and a
//!   `main.tf` made of the provider block of `examples/provider/provider.tf`, the
//!   `required_providers` block and the example;
//! - `tofu init`, `validate`, `plan`, `apply -auto-approve`, a second `plan` that must be empty,
//!   and `destroy -auto-approve`.
//!
//! An example that uses another provider (say `aws_db_instance`) cannot be installed here (the
//! workspace has no network), so only `fmt -check` runs for it, and the test says so on stderr.
//! Every `variable "NAME"` of an example gets the placeholder `example-NAME` through
//! `TF_VAR_NAME`. No example may print a warning, the quickstart's plaintext values or a
//! variable's placeholder.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use support::{REQUIRED_PROVIDERS, RunOutput, Workspace, repo_root};

/// The folders holding examples, in the Terraform registry layout.
const EXAMPLE_FOLDERS: [&str; 4] = [
    "provider",
    "data-sources",
    "ephemeral-resources",
    "resources",
];

/// The plaintext values encrypted in `examples/quickstart/secrets/`. Fixtures only, not secrets.
const QUICKSTART_PLAINTEXTS: [&str; 2] =
    ["dd-example-3f9a1c7e5b2d4086", "example-db-password-7Kq2Vx9"];

/// Resource, data source and ephemeral types that need no provider beyond this one.
fn is_local_type(type_name: &str) -> bool {
    type_name.starts_with("atmos_") || type_name == "terraform_data"
}

/// Every `*.tf` file under the example folders, sorted.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "tf") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for folder in EXAMPLE_FOLDERS {
        walk(&repo_root().join("examples").join(folder), &mut files);
    }
    files.sort();
    files
}

/// The quoted labels of top-level blocks of `kind` (`resource "aws_x" "y"` gives `aws_x`).
fn block_labels(hcl: &str, kind: &str) -> Vec<String> {
    let prefix = format!("{kind} \"");
    hcl.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The types (and provider names) an example uses that this workspace cannot install.
fn external_types(hcl: &str) -> BTreeSet<String> {
    let mut external: BTreeSet<String> = ["resource", "data", "ephemeral"]
        .iter()
        .flat_map(|kind| block_labels(hcl, kind))
        .filter(|t| !is_local_type(t))
        .collect();
    external.extend(
        block_labels(hcl, "provider")
            .into_iter()
            .filter(|p| p != "atmos"),
    );
    external
}

/// The top-level `provider "atmos" { ... }` block of `examples/provider/provider.tf`, with the
/// comments right above it.
fn provider_block() -> String {
    let path = repo_root().join("examples/provider/provider.tf");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("provider \"atmos\""))
        .unwrap_or_else(|| panic!("{}: no `provider \"atmos\"` block", path.display()));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| *l == "}")
            .unwrap_or_else(|| panic!("{}: the provider block is not closed", path.display()));
    let mut first = start;
    while first > 0 && lines[first - 1].starts_with('#') {
        first -= 1;
    }
    lines[first..=end].join("\n") + "\n"
}

/// The root module for `example`: the example itself when it configures the provider, else the
/// provider block and `required_providers` in front of it.
fn main_tf(example: &str) -> String {
    if example.contains("provider \"atmos\"") {
        example.to_owned()
    } else {
        format!("{REQUIRED_PROVIDERS}\n{}\n{example}", provider_block())
    }
}

/// Fails (with the example's name and the whole output) unless `out` succeeded and shows none of
/// `hidden` and, when `warnings` is false, no warning.
fn check_run(rel: &str, out: &RunOutput, hidden: &[String], warnings: bool) -> Result<(), String> {
    if !out.success() {
        return Err(format!("{rel}: command failed:\n{out}"));
    }
    let text = out.combined();
    if !warnings && text.contains("Warning:") {
        return Err(format!("{rel}: OpenTofu printed a warning:\n{out}"));
    }
    if hidden.iter().any(|h| text.contains(h.as_str())) {
        // Not the output itself: it holds the value that must not be shown.
        return Err(format!(
            "{rel}: `{}` printed a secret or variable value in plaintext",
            out.command
        ));
    }
    Ok(())
}

/// Runs one example; `Err` says what went wrong, naming the file.
fn run_example(path: &Path) -> Result<(), String> {
    let rel = path
        .strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string();
    let example = fs::read_to_string(path).map_err(|e| format!("{rel}: cannot read it: {e}"))?;

    let ws = Workspace::new();
    let fmt = ws
        .tofu(["fmt", "-check", "-diff", "-no-color"])
        .arg(path)
        .run();
    if !fmt.success() {
        return Err(format!("{rel}: not formatted as `tofu fmt` would:\n{fmt}"));
    }

    let external = external_types(&example);
    if !external.is_empty() {
        eprintln!(
            "{rel}: only `tofu fmt -check` ran; it needs providers this workspace cannot \
             install ({})",
            external.into_iter().collect::<Vec<_>>().join(", ")
        );
        return Ok(());
    }

    ws.copy_example("quickstart");
    // The provider example points at `${path.root}/../quickstart`, as in the repository; the
    // same path leads to the copy here.
    std::os::unix::fs::symlink(ws.work_dir(), ws.root().join("quickstart"))
        .map_err(|e| format!("{rel}: link the quickstart: {e}"))?;
    ws.write("main.tf", main_tf(&example));

    let variables = block_labels(&example, "variable");
    let mut hidden: Vec<String> = QUICKSTART_PLAINTEXTS.map(str::to_owned).to_vec();
    hidden.extend(variables.iter().map(|v| format!("example-{v}")));
    let with_vars = |mut cmd: support::Tofu| {
        for v in &variables {
            cmd = cmd.env(format!("TF_VAR_{v}"), format!("example-{v}"));
        }
        cmd.run()
    };

    // init warns that a filesystem mirror gives lock file checksums for this platform only.
    check_run(&rel, &ws.init().run(), &hidden, true)?;
    check_run(&rel, &with_vars(ws.validate()), &hidden, false)?;
    check_run(&rel, &with_vars(ws.plan()), &hidden, false)?;
    check_run(&rel, &with_vars(ws.apply()), &hidden, false)?;
    let again = with_vars(ws.plan().arg("-detailed-exitcode"));
    if again.status.code() != Some(0) {
        return Err(format!(
            "{rel}: the plan after apply is not empty (exit code {:?}):\n{again}",
            again.status.code()
        ));
    }
    check_run(&rel, &again, &hidden, false)?;
    check_run(&rel, &with_vars(ws.destroy()), &hidden, false)?;
    Ok(())
}

#[test]
fn every_example_is_formatted_and_runs() {
    let files = example_files();
    assert!(
        files.len() >= 6,
        "expected the registry examples under examples/, found {files:?}"
    );
    let failures: Vec<String> = files.iter().filter_map(|f| run_example(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn examples_are_found_by_walking_the_folders() {
    let files = example_files();
    for expected in [
        "examples/provider/provider.tf",
        "examples/data-sources/atmos_secret/data-source.tf",
        "examples/data-sources/atmos_secrets/data-source.tf",
        "examples/ephemeral-resources/atmos_secret/ephemeral-resource.tf",
        "examples/resources/atmos_secret_value/resource.tf",
    ] {
        assert!(
            files.contains(&repo_root().join(expected)),
            "{expected} not found among {files:?}"
        );
    }
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with(repo_root().join("examples/quickstart"))),
        "the quickstart is a fixture, not a registry example"
    );
}

#[test]
fn external_providers_are_recognised() {
    let example = fs::read_to_string(
        repo_root().join("examples/ephemeral-resources/atmos_secret/ephemeral-resource.tf"),
    )
    .expect("read the ephemeral example");
    let external = external_types(&example);
    assert!(external.contains("aws_db_instance"), "{external:?}");
    assert!(external.contains("postgresql"), "{external:?}");
    assert!(
        !external.iter().any(|t| t.starts_with("atmos_")),
        "{external:?}"
    );
    assert!(external_types(&main_tf("data \"atmos_secret\" \"x\" {}\n")).is_empty());
}

/// Every example file is quoted, byte for byte, in the documentation page it belongs to, so the
/// docs show what this file tests.
#[test]
fn docs_quote_the_examples_verbatim() {
    let pages = [
        ("docs/index.md", "examples/provider"),
        (
            "docs/data-sources/secret.md",
            "examples/data-sources/atmos_secret",
        ),
        (
            "docs/data-sources/secrets.md",
            "examples/data-sources/atmos_secrets",
        ),
        (
            "docs/ephemeral-resources/secret.md",
            "examples/ephemeral-resources/atmos_secret",
        ),
        (
            "docs/resources/secret_value.md",
            "examples/resources/atmos_secret_value",
        ),
    ];
    let mut failures = Vec::new();
    for (page, folder) in pages {
        let doc = fs::read_to_string(repo_root().join(page)).expect("read the page");
        let mut files: Vec<PathBuf> = fs::read_dir(repo_root().join(folder))
            .expect("read the example folder")
            .map(|e| e.expect("read the example folder").path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf" || x == "sh"))
            .collect();
        files.sort();
        for file in files {
            let text = fs::read_to_string(&file).expect("read the example");
            let fence = if file.extension().is_some_and(|x| x == "sh") {
                "shell"
            } else {
                "terraform"
            };
            if !doc.contains(&format!("```{fence}\n{text}```\n")) {
                failures.push(format!(
                    "{page} does not quote {} verbatim in a ```{fence} block",
                    file.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `examples/resources/atmos_secret_value/import.sh`, run line by line against the quickstart, with
/// a configuration for the addresses it names. The first plan after the import writes each
/// configured value once, as the resource page says: state holds no value to compare with.
#[test]
fn import_example_runs() {
    let path = repo_root().join("examples/resources/atmos_secret_value/import.sh");
    let script = fs::read_to_string(&path).expect("read import.sh");
    let imports: Vec<Vec<&str>> = script
        .lines()
        .filter(|l| l.starts_with("tofu import "))
        .map(|l| l.split_whitespace().skip(2).collect())
        .collect();
    assert_eq!(
        imports,
        [
            vec!["atmos_secret_value.x", "prod/api/DB_PASSWORD"],
            vec!["atmos_secret_value.y", "prod//DATADOG_API_KEY"],
        ],
        "{}",
        path.display()
    );

    let ws = Workspace::new();
    ws.copy_example("quickstart");
    ws.write(
        "main.tf",
        format!(
            "{REQUIRED_PROVIDERS}\nprovider \"atmos\" {{}}\n\n{}",
            r#"variable "new_value" {
  type      = string
  ephemeral = true
}

resource "atmos_secret_value" "x" {
  name             = "DB_PASSWORD"
  stack            = "prod"
  component        = "api"
  value_wo         = var.new_value
  value_wo_version = 1
}

resource "atmos_secret_value" "y" {
  name             = "DATADOG_API_KEY"
  stack            = "prod"
  value_wo         = var.new_value
  value_wo_version = 1
}
"#
        ),
    );
    ws.init().run().assert_success();
    for args in &imports {
        ws.import(args[0], args[1])
            .env("TF_VAR_new_value", "example-imported")
            .run()
            .assert_success();
    }
    let state = ws.read("terraform.tfstate");
    for plaintext in QUICKSTART_PLAINTEXTS {
        assert!(!state.contains(plaintext), "import put a value in state");
    }
    let out = ws.plan().env("TF_VAR_new_value", "example-imported").run();
    out.assert_success();
    assert!(
        out.stdout.contains("0 to add, 2 to change, 0 to destroy"),
        "{out}"
    );
}
