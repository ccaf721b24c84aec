//! Loading a large stack tree: 500 top-level manifests (5 tenants x 10 environments x 10
//! stages), each importing tenant defaults, which import org defaults, which import a catalog
//! of 20 components by glob; abstract bases with `inherits`; stack, instance and global
//! declarations on a store and on SOPS. Every iteration loads from scratch (atmos.yaml, every
//! manifest, every declaration, collision checks), as a provider process does once.

use std::path::Path;

use atmos_provider::resolve::{LoadOptions, Workspace};
use criterion::{Criterion, criterion_group, criterion_main};

const TENANTS: usize = 5;
const ENVIRONMENTS: usize = 10;
const STAGES: usize = 10;
const CATALOG: usize = 20;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn generate(root: &Path) -> usize {
    write(
        root,
        "atmos.yaml",
        r#"
base_path: .
stacks:
  base_path: stacks
  included_paths: ["orgs/**/*"]
  excluded_paths: ["**/_defaults.yaml"]
  name_pattern: "{tenant}-{environment}-{stage}"
stores:
  ssm: { kind: aws/ssm, secret: true, options: { region: us-east-1, prefix: /atmos } }
  gsm: { kind: gcp/secretmanager, secret: true, options: { project_id: p } }
secrets:
  providers:
    local: { kind: sops/age, spec: { path: secrets, age_recipients: [age1xyz] } }
"#,
    );
    for c in 0..CATALOG {
        write(
            root,
            &format!("stacks/catalog/c{c}.yaml"),
            &format!(
                r#"
components:
  terraform:
    c{c}-base:
      metadata: {{ type: abstract, component: c{c} }}
      vars: {{ size: small, zones: [a, b, c], tags: {{ team: t{c} }} }}
      secrets:
        vars:
          C{c}_PASSWORD: {{ description: password of c{c}, store: ssm, required: true }}
          C{c}_TOKEN: {{ description: token of c{c}, store: gsm }}
    c{c}:
      metadata: {{ component: c{c}, inherits: [c{c}-base] }}
      vars: {{ enabled: true, name: c{c} }}
      secrets:
        vars:
          C{c}_KEY: {{ sops: local }}
"#
            ),
        );
    }
    write(
        root,
        "stacks/orgs/acme/_defaults.yaml",
        r#"
import: [catalog/*]
vars: { namespace: acme }
secrets:
  vars:
    DATADOG_API_KEY: { store: ssm, scope: global }
    SLACK_WEBHOOK: { sops: local }
"#,
    );
    for e in 0..ENVIRONMENTS {
        write(
            root,
            &format!("stacks/mixins/region/e{e}.yaml"),
            &format!("vars: {{ environment: e{e}, region: r{e} }}\n"),
        );
    }
    for s in 0..STAGES {
        write(
            root,
            &format!("stacks/mixins/stage/s{s}.yaml"),
            &format!("vars: {{ stage: s{s} }}\n"),
        );
    }
    let mut stacks = 0;
    for t in 0..TENANTS {
        write(
            root,
            &format!("stacks/orgs/acme/t{t}/_defaults.yaml"),
            &format!("import: [orgs/acme/_defaults]\nvars: {{ tenant: t{t} }}\n"),
        );
        for e in 0..ENVIRONMENTS {
            for s in 0..STAGES {
                write(
                    root,
                    &format!("stacks/orgs/acme/t{t}/e{e}/s{s}.yaml"),
                    &format!(
                        r#"
import:
  - ../_defaults
  - mixins/region/e{e}
  - mixins/stage/s{s}
secrets:
  vars:
    DB_URL: {{ store: ssm, description: stack database }}
components:
  terraform:
    c{c}:
      vars: {{ size: large }}
      secrets:
        vars:
          SLACK_WEBHOOK: {{}}
"#,
                        c = (e + s) % CATALOG
                    ),
                );
                stacks += 1;
            }
        }
    }
    stacks
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stacks = generate(dir.path());
    let opts = LoadOptions {
        cli_config_path: Some(dir.path().to_path_buf()),
        base_path: None,
        working_dir: dir.path().to_path_buf(),
    };
    let ws = Workspace::load(&opts).expect("the generated tree loads");
    assert_eq!(ws.stack_names().len(), stacks);
    // Criterion measures wall time, which other processes on a busy machine inflate; the CPU
    // time of the whole process (all loader threads; Linux /proc, 100 ticks a second) is printed
    // too.
    let cpu_ns = || -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) * 10_000_000)
    };
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (t0, c0) = (std::time::Instant::now(), cpu_ns());
        let ws = Workspace::load(&opts).expect("loads");
        let wall = t0.elapsed().as_secs_f64() * 1e3;
        let cpu = match (c0, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e6,
            _ => f64::NAN,
        };
        // A provider keeps its workspace for the life of the process: dropping it is not part
        // of loading.
        drop(ws);
        best = (best.0.min(wall), best.1.min(cpu));
    }
    println!(
        "cold load of {stacks} stacks: best of 5: {:.1} ms wall, {:.0} ms CPU (all threads)",
        best.0, best.1
    );
    let mut group = c.benchmark_group("resolve");
    group.sample_size(10);
    group.bench_function(format!("load {stacks} stacks"), |b| {
        b.iter_with_large_drop(|| Workspace::load(&opts).expect("loads"))
    });
    group.bench_function("resolve one secret", |b| {
        b.iter(|| {
            ws.resolve("t3-e7-s2", Some("c9"), "SLACK_WEBHOOK")
                .expect("declared")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
