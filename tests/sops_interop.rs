//! The `sops/age` store against the real `sops` (v3.13.1), `age` and `age-keygen` binaries built
//! by `scripts/peers` into `$HOME/.cache/terraform-provider-atmos/bin`. Without them these tests
//! fail (they never pass silently).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use atmos_provider::sensitive::SecretValue;
use atmos_provider::store::sops::{SopsFile, SopsMap, SopsStore, SopsValue, parse_identities};
use atmos_provider::store::{Location, SecretStore, StoreError};
use serde_json::{Value as Json, json};

fn bin(name: &str) -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is not set");
    let path = Path::new(&home)
        .join(".cache/terraform-provider-atmos/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/peers` to build the test peers (sops, age, age-keygen)",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("cannot start the peer binary");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh age key from `age-keygen`: (key file, recipient).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run(Command::new(bin("age-keygen")).arg("-o").arg(&key));
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen wrote no public key comment")
        .trim()
        .to_owned();
    (key, recipient)
}

/// `sops --encrypt` of a plaintext YAML file, written next to it.
fn sops_encrypt(plain: &Path, recipient: &str) -> PathBuf {
    sops_encrypt_with(plain, recipient, &[])
}

/// `sops --encrypt` with extra options (such as `--mac-only-encrypted`).
fn sops_encrypt_with(plain: &Path, recipient: &str, options: &[&str]) -> PathBuf {
    let out = run(Command::new(bin("sops"))
        .args([
            "--encrypt",
            "--age",
            recipient,
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
        ])
        .args(options)
        .arg(plain));
    let enc = plain.with_extension("enc.yaml");
    std::fs::write(&enc, out.stdout).unwrap();
    enc
}

/// `sops --decrypt` to JSON, with `key` as the only age key.
fn sops_decrypt_json(file: &Path, key: &Path) -> Json {
    let out = sops_decrypt(file, key, "json");
    assert!(
        out.status.success(),
        "sops -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sops_decrypt(file: &Path, key: &Path, output_type: &str) -> Output {
    Command::new(bin("sops"))
        .args([
            "--decrypt",
            "--input-type",
            "yaml",
            "--output-type",
            output_type,
        ])
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("cannot start sops")
}

fn loc(file: &Path, key: &str) -> Location {
    Location::SopsKey {
        file: file.to_path_buf(),
        key: key.to_owned(),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

const PLAIN: &str = r#"# database settings
db:
  password: s3cret # inline comment
  port: 5432
  ratio: 0.75
  tls: true
  debug: false
  empty: ""
  nothing: null
# a list, with a comment inside
hosts:
  - alpha
  # second host
  - 42
  - {name: beta, weight: 1.5}
  - [x, ""]
multi: |
  first line
  second line
folded: >-
  one
  two
public_unencrypted: visible
api_key: '{"looks": "like json"}'
"#;

#[tokio::test]
async fn a_file_encrypted_by_sops_decrypts_with_us() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path(), "key.txt");
    let plain = dir.path().join("secrets.yaml");
    std::fs::write(&plain, PLAIN).unwrap();
    let enc = sops_encrypt(&plain, &recipient);
    let text = std::fs::read_to_string(&enc).unwrap();
    assert!(
        text.contains("type:comment"),
        "sops did not encrypt the comments:\n{text}"
    );
    assert!(!text.contains("s3cret"));

    // The whole tree, compared with what sops itself decrypts.
    let ids = parse_identities(&std::fs::read_to_string(&key).unwrap()).unwrap();
    let ours = SopsFile::decrypt(&text, &ids).unwrap();
    let ours_json: Json = serde_json::to_value(SopsValue::Map(ours.data().clone())).unwrap();
    assert_eq!(ours_json, sops_decrypt_json(&enc, &key));
    assert_eq!(
        ours_json,
        json!({
            "db": {"password": "s3cret", "port": 5432, "ratio": 0.75, "tls": true, "debug": false,
                   "empty": "", "nothing": null},
            "hosts": ["alpha", 42, {"name": "beta", "weight": 1.5}, ["x", ""]],
            "multi": "first line\nsecond line\n",
            "folded": "one two",
            "public_unencrypted": "visible",
            "api_key": "{\"looks\": \"like json\"}"
        })
    );

    // Through the store, as Atmos reads values.
    let store = SopsStore::open_with_env(Some(&key), &[], no_env).unwrap();
    let read = |k: &str| {
        let l = loc(&enc, k);
        let store = &store;
        async move {
            store
                .read(&l)
                .await
                .unwrap()
                .map(|v| v.value.expose().to_owned())
        }
    };
    assert_eq!(
        read("multi").await.as_deref(),
        Some("first line\nsecond line\n")
    );
    assert_eq!(
        read("api_key").await.as_deref(),
        Some(r#"{"looks": "like json"}"#)
    );
    assert_eq!(read("public_unencrypted").await.as_deref(), Some("visible"));
    let db: Json = serde_json::from_str(&read("db").await.unwrap()).unwrap();
    assert_eq!(db["port"], json!(5432));
    assert_eq!(read("absent").await, None);
    let version = store
        .read(&loc(&enc, "multi"))
        .await
        .unwrap()
        .unwrap()
        .version
        .unwrap();
    // A per-key version id (keyed MAC), not the file's lastmodified and not the value.
    assert!(version.starts_with("k1-"), "version {version}");
    assert!(
        !text.contains(&version),
        "version {version} must not be in the file"
    );
}

#[tokio::test]
async fn files_we_write_decrypt_with_sops() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "key.txt");
    let file = dir.path().join("new.yaml");
    let store = SopsStore::open_with_env(Some(&key), &[], no_env).unwrap();
    let values = [
        ("password", "hunter2"),
        ("multi", "line one\nline two\n"),
        ("empty", ""),
        ("json_like", r#"{"a": [1, 2]}"#),
        ("unicode", "grüße ✓"),
        ("token_unencrypted", "plain"),
    ];
    for (k, v) in values {
        store
            .write(&loc(&file, k), &SecretValue::new(v.to_owned()))
            .await
            .unwrap();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("hunter2"));
    assert!(text.contains("token_unencrypted: plain"), "{text}");
    let expected: serde_json::Map<String, Json> = values
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    assert_eq!(sops_decrypt_json(&file, &key), Json::Object(expected));

    // A full tree through the format API: nested maps, lists, numbers, booleans, null.
    let ids = parse_identities(&std::fs::read_to_string(&key).unwrap()).unwrap();
    let mut tree = SopsFile::new(&[ids[0].to_public()]).unwrap();
    let mut inner = SopsMap::new();
    inner.insert("port".into(), SopsValue::Int(-8080));
    inner.insert("ratio".into(), SopsValue::Float(1e-7));
    inner.insert("whole".into(), SopsValue::Float(2.0));
    inner.insert("on".into(), SopsValue::Bool(true));
    inner.insert("off".into(), SopsValue::Bool(false));
    inner.insert("none".into(), SopsValue::Null);
    inner.insert("empty".into(), SopsValue::string(""));
    tree.data_mut()
        .insert("inner".into(), SopsValue::Map(inner));
    tree.data_mut().insert(
        "list".into(),
        SopsValue::List(vec![
            SopsValue::string("a"),
            SopsValue::List(vec![SopsValue::Int(1)]),
            SopsValue::Map(SopsMap::from_iter([(
                "k".to_owned(),
                SopsValue::string("v"),
            )])),
        ]),
    );
    let tree_file = dir.path().join("tree.yaml");
    std::fs::write(&tree_file, tree.encrypt(chrono::Utc::now()).unwrap()).unwrap();
    assert_eq!(
        sops_decrypt_json(&tree_file, &key),
        json!({
            // A float with no fraction is written as `2`, and sops prints it so (as it does for
            // its own files).
            "inner": {"port": -8080, "ratio": 1e-7, "whole": 2, "on": true, "off": false,
                      "none": null, "empty": ""},
            "list": ["a", [1], {"k": "v"}]
        })
    );
}

#[tokio::test]
async fn we_rewrite_a_sops_file_and_sops_still_decrypts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path(), "key.txt");
    let (_, other_recipient) = keygen(dir.path(), "other.txt");
    let plain = dir.path().join("secrets.yaml");
    std::fs::write(&plain, PLAIN).unwrap();
    let enc = sops_encrypt(&plain, &recipient);
    let original = std::fs::read_to_string(&enc).unwrap();
    let before = sops_decrypt_json(&enc, &key);

    // Configured recipients apply to new files only: the rewrite keeps the file's own.
    let store = SopsStore::open_with_env(Some(&key), &[other_recipient], no_env).unwrap();
    store
        .write(&loc(&enc, "added"), &SecretValue::new("new value".into()))
        .await
        .unwrap();
    store
        .write(&loc(&enc, "multi"), &SecretValue::new("changed".into()))
        .await
        .unwrap();
    store.delete(&loc(&enc, "folded")).await.unwrap();

    // Unchanged values keep sops' own ciphertext (small diffs in git, as sops does).
    let password_line = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("password: ENC["))
            .map(|l| l.split(" #").next().unwrap().trim().to_owned())
            .unwrap()
    };
    let rewritten = std::fs::read_to_string(&enc).unwrap();
    assert_eq!(password_line(&original), password_line(&rewritten));

    let mut expected = before.as_object().unwrap().clone();
    expected.insert("multi".into(), json!("changed"));
    expected.shift_remove("folded");
    expected.insert("added".into(), json!("new value"));
    let after = sops_decrypt_json(&enc, &key);
    assert_eq!(after, Json::Object(expected));
    // Order of the other keys is kept.
    let keys: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "db",
            "hosts",
            "multi",
            "public_unencrypted",
            "api_key",
            "added"
        ]
    );
}

#[tokio::test]
async fn configured_recipients_can_all_decrypt_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (key1, r1) = keygen(dir.path(), "k1.txt");
    let (key2, r2) = keygen(dir.path(), "k2.txt");
    let file = dir.path().join("shared.yaml");
    let store = SopsStore::open_with_env(Some(&key1), &[r1, r2], no_env).unwrap();
    store
        .write(&loc(&file, "k"), &SecretValue::new("v".into()))
        .await
        .unwrap();
    assert_eq!(sops_decrypt_json(&file, &key1), json!({"k": "v"}));
    assert_eq!(sops_decrypt_json(&file, &key2), json!({"k": "v"}));
}

#[tokio::test]
async fn tampered_ciphertext_is_an_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path(), "key.txt");
    let plain = dir.path().join("secrets.yaml");
    std::fs::write(&plain, PLAIN).unwrap();
    let enc = sops_encrypt(&plain, &recipient);
    let text = std::fs::read_to_string(&enc).unwrap();
    // Flip one character of the data of `multi`.
    let marker = "multi: ENC[AES256_GCM,data:";
    let at = text.find(marker).expect("no encrypted multi") + marker.len();
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&enc, bytes).unwrap();
    // The real sops rejects it too, so the file really is tampered.
    assert!(!sops_decrypt(&enc, &key, "json").status.success());

    let store = SopsStore::open_with_env(Some(&key), &[], no_env).unwrap();
    let err = store.read(&loc(&enc, "db")).await.unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("secrets.enc.yaml") && msg.contains("multi"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = keygen(dir.path(), "key.txt");
    let (wrong, _) = keygen(dir.path(), "wrong.txt");
    let plain = dir.path().join("secrets.yaml");
    std::fs::write(&plain, PLAIN).unwrap();
    let enc = sops_encrypt(&plain, &recipient);
    let store = SopsStore::open_with_env(None, &[], |n: &str| {
        (n == "SOPS_AGE_KEY_FILE").then(|| wrong.display().to_string())
    })
    .unwrap();
    let err = store.read(&loc(&enc, "db")).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Denied { .. }), "{msg}");
    assert!(msg.contains("secrets.enc.yaml"), "{msg}");
    assert!(msg.contains("no age identity matches"), "{msg}");
    assert!(msg.contains(&recipient), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_parallel_writes_into_one_file_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "key.txt");
    let file = dir.path().join("parallel.yaml");
    let store = Arc::new(SopsStore::open_with_env(Some(&key), &[], no_env).unwrap());
    // A second store instance in the same process shares the file's lock.
    let other = Arc::new(SopsStore::open_with_env(Some(&key), &[], no_env).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let st = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            let l = loc(&file, &format!("key{i}"));
            tokio::spawn(async move {
                st.write(&l, &SecretValue::new(format!("value {i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let got = sops_decrypt_json(&file, &key);
    let obj = got.as_object().unwrap();
    assert_eq!(obj.len(), 8, "{:?}", obj.keys().collect::<Vec<_>>());
    for i in 0..8 {
        assert_eq!(obj[&format!("key{i}")], json!(format!("value {i}")));
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sops_options_mac_only_encrypted_and_encrypted_suffix_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path(), "key.txt");
    let plain = dir.path().join("opts.yaml");
    std::fs::write(&plain, "name: public\ndb_secret: hidden\nport: 5\n").unwrap();
    for options in [
        &["--mac-only-encrypted"][..],
        &["--encrypted-suffix", "_secret"][..],
    ] {
        let enc = sops_encrypt_with(&plain, &recipient, options);
        let text = std::fs::read_to_string(&enc).unwrap();
        assert!(!text.contains("hidden"), "{options:?}");
        let marker = if options[0] == "--mac-only-encrypted" {
            "mac_only_encrypted: true"
        } else {
            "encrypted_suffix: _secret"
        };
        assert!(text.contains(marker), "{options:?}: {text}");
        let store = SopsStore::open_with_env(Some(&key), &[], no_env).unwrap();
        let got = store.read(&loc(&enc, "db_secret")).await.unwrap().unwrap();
        assert_eq!(got.value.expose(), "hidden", "{options:?}");
        store
            .write(&loc(&enc, "api_secret"), &SecretValue::new("k".into()))
            .await
            .unwrap();
        let after = std::fs::read_to_string(&enc).unwrap();
        assert!(!after.contains("api_secret: k"), "{options:?}: {after}");
        assert!(after.contains(marker), "{options:?}: {after}");
        assert_eq!(
            sops_decrypt_json(&enc, &key),
            json!({"name": "public", "db_secret": "hidden", "port": 5, "api_secret": "k"}),
            "{options:?}"
        );
    }
}
