//! Property tests: the deep-merge laws, and "coordinates are one-to-one or the collision is
//! reported" for the lossy store naming rules.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};

use atmos_provider::resolve::manifest::deep_merge;
use atmos_provider::resolve::naming::{self, Coordinate, Naming, StoreKind};
use atmos_provider::resolve::{LoadOptions, Workspace};
use proptest::prelude::*;
use serde_yaml_ng::{Mapping, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i8>().prop_map(|i| Value::Number(i.into())),
        "[a-c]{0,2}".prop_map(Value::String),
        prop::collection::vec(any::<i8>().prop_map(|i| Value::Number(i.into())), 0..3)
            .prop_map(Value::Sequence),
        Just(Value::Null),
    ]
}

/// Any document: maps (keys a, b, c) nested up to three deep, with leaves anywhere.
fn doc() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 3, |inner| {
        prop::collection::btree_map("[a-c]", inner, 0..3).prop_map(|m| {
            Value::Mapping(m.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
        })
    })
}

/// A document of a fixed shape: top-level maps of leaves (the shape of `vars`, `settings`...).
fn shaped() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-c]",
        prop::collection::btree_map("[x-z]", leaf(), 0..3),
        0..3,
    )
    .prop_map(|m| {
        Value::Mapping(
            m.into_iter()
                .map(|(k, inner)| {
                    let inner: Mapping = inner
                        .into_iter()
                        .map(|(k, v)| (Value::String(k), v))
                        .collect();
                    (Value::String(k), Value::Mapping(inner))
                })
                .collect(),
        )
    })
}

fn merged(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    deep_merge(&mut out, b);
    out
}

/// Every non-map value with its key path.
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, Value)>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                path.push(k.clone());
                leaves(v, path, out);
                path.pop();
            }
        }
        other => out.push((path.clone(), other.clone())),
    }
}

fn at<'a>(v: &'a Value, path: &[Value]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, k| v.as_mapping().and_then(|m| m.get(k)))
}

proptest! {
    #[test]
    fn empty_map_is_an_identity(a in doc()) {
        let empty = Value::Mapping(Mapping::new());
        if a.is_mapping() {
            prop_assert_eq!(merged(&empty, &a), a.clone());
        }
        prop_assert_eq!(merged(&a, &empty), if a.is_mapping() { a.clone() } else { empty });
    }

    #[test]
    fn merge_is_idempotent(a in doc()) {
        prop_assert_eq!(merged(&a, &a), a);
    }

    #[test]
    fn the_later_document_wins_every_leaf(a in doc(), b in doc()) {
        let m = merged(&a, &b);
        let mut out = Vec::new();
        leaves(&b, &mut Vec::new(), &mut out);
        for (path, value) in out {
            prop_assert_eq!(at(&m, &path), Some(&value), "path {:?}", path);
        }
    }

    #[test]
    fn earlier_leaves_survive_unless_overwritten(a in doc(), b in doc()) {
        let m = merged(&a, &b);
        let mut out = Vec::new();
        leaves(&a, &mut Vec::new(), &mut out);
        for (path, value) in out {
            // Overwritten when b has anything at the leaf's path, or a non-map above it.
            let shadowed = at(&b, &path).is_some()
                || (0..path.len()).any(|n| at(&b, &path[..n]).is_some_and(|v| !v.is_mapping()));
            if !shadowed {
                prop_assert_eq!(at(&m, &path), Some(&value), "path {:?}", path);
            }
        }
    }

    #[test]
    fn merge_is_associative_on_consistent_shapes(a in shaped(), b in shaped(), c in shaped()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }
}

// -------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Decl {
    stack: usize,
    component: Option<&'static str>,
    key: &'static str,
    global: bool,
}

const STACKS: [&str; 4] = ["a-b", "a_b", "a", "A-b"];
const COMPONENTS: [&str; 2] = ["b", "c-d"];
const KEYS: [&str; 4] = ["K_1", "K-1", "k-1", "b-K"];

fn decl() -> impl Strategy<Value = Decl> {
    (
        0..STACKS.len(),
        prop::option::of(prop::sample::select(&COMPONENTS[..])),
        prop::sample::select(&KEYS[..]),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(stack, component, key, global)| Decl {
            stack,
            component,
            key,
            global,
        })
}

fn coordinate(d: &Decl) -> Coordinate {
    Coordinate {
        stack: (!d.global).then(|| STACKS[d.stack].to_string()),
        component: if d.global {
            None
        } else {
            d.component.map(str::to_string)
        },
        key: d.key.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn coordinates_are_one_to_one_or_the_collision_is_reported(
        decls in prop::collection::vec(decl(), 1..6),
        kind in prop::sample::select(vec![StoreKind::AzureKeyVault, StoreKind::GcpSecretManager, StoreKind::AwsSsm]),
    ) {
        // One declaration per (stack, component, key): a stack file declares each name once.
        let mut seen = BTreeSet::new();
        let decls: Vec<Decl> = decls
            .into_iter()
            .filter(|d| seen.insert((d.stack, d.component, d.key)))
            .collect();
        let store = kind.as_str();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("atmos.yaml"),
            format!("stacks: {{ base_path: stacks }}\nstores: {{ s: {{ kind: {store}, secret: true }} }}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("stacks")).unwrap();
        for (i, name) in STACKS.iter().enumerate() {
            let mut text = format!("name: {name:?}\nsecrets:\n  vars:\n");
            for d in decls.iter().filter(|d| d.stack == i && d.component.is_none()) {
                text.push_str(&format!("    {:?}: {{store: s{}}}\n", d.key, if d.global { ", scope: global" } else { "" }));
            }
            text.push_str("components:\n  terraform:\n");
            for c in COMPONENTS {
                text.push_str(&format!("    {c:?}:\n      secrets:\n        vars:\n"));
                for d in decls.iter().filter(|d| d.stack == i && d.component == Some(c)) {
                    text.push_str(&format!("          {:?}: {{store: s{}}}\n", d.key, if d.global { ", scope: global" } else { "" }));
                }
            }
            std::fs::write(dir.path().join(format!("stacks/s{i}.yaml")), text).unwrap();
        }

        // The expectation, from the pure naming functions.
        let naming = Naming { prefix: String::new(), stack_delimiter: kind.default_stack_delimiter().to_string() };
        let mut by_native: HashMap<String, BTreeSet<Coordinate>> = HashMap::new();
        for d in &decls {
            let c = coordinate(d);
            let native = naming::native_name(kind, &naming, &c);
            by_native.entry(naming::collision_key(kind, &native)).or_default().insert(c);
        }
        let expect_collision = by_native.values().any(|coords| coords.len() > 1);

        let result = Workspace::load(&LoadOptions {
            cli_config_path: Some(dir.path().to_path_buf()),
            base_path: None,
            working_dir: dir.path().to_path_buf(),
        });
        match result {
            Ok(ws) => {
                prop_assert!(!expect_collision, "a collision went unreported: {by_native:?}");
                // And the loaded locations are one-to-one.
                let mut locations: HashMap<String, Coordinate> = HashMap::new();
                for stack in ws.stack_names() {
                    let mut all = ws.declared(&stack, None).unwrap();
                    for c in COMPONENTS {
                        all.extend(ws.declared(&stack, Some(c)).unwrap());
                    }
                    for s in all {
                        let key = naming::collision_key(kind, &s.location.to_string());
                        if let Some(prev) = locations.insert(key, s.coordinate.clone()) {
                            prop_assert_eq!(prev, s.coordinate);
                        }
                    }
                }
            }
            Err(e) => {
                prop_assert!(expect_collision, "unexpected error: {e}");
                prop_assert!(e.to_string().contains("collision"), "{e}");
            }
        }
    }
}
