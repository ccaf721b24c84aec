//! SOPS files encrypted with age: the `sops/age` backend.
//!
//! Two levels:
//!
//! - [`SopsFile`] is the file format, pure and synchronous: it decrypts a SOPS YAML document with
//!   age identities into an ordered tree ([`SopsValue`]), verifies the MAC, and encrypts a tree
//!   back into a document that the real `sops` decrypts.
//! - [`SopsStore`] is the [`SecretStore`]: one top-level key of one file per
//!   [`Location::SopsKey`], a per-process cache of decrypted files, and atomic read-modify-write
//!   under a per-file lock.
//!
//! # Format, as written by sops 3.x
//!
//! Keys stay in clear; every leaf value becomes
//! `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|...>]`: AES-256-GCM with
//! a 32-byte IV, keyed by a random 32-byte data key, with the path of map keys leading to the
//! leaf (list indices are not part of it) joined by `:` plus a trailing `:` as additional data.
//! Empty strings and nulls are not encrypted. The data key is wrapped for each age recipient as
//! an armored age file (`sops.age[].enc`). The MAC is SHA-512 over the plaintext of every leaf in
//! document order (booleans as `True`/`False`, floats in shortest form), upper-case hex, encrypted
//! like a value with `sops.lastmodified` as additional data. Values under a key ending in the
//! unencrypted suffix (`_unencrypted` by default) stay in clear but are still covered by the MAC.
//!
//! Supported metadata: `age`, `unencrypted_suffix` or `encrypted_suffix`, `mac_only_encrypted`;
//! other key-wrapping entries (pgp, kms, ...) are kept untouched on rewrite.
//!
//! # Where this differs from sops
//!
//! - YAML comments: sops encrypts them (`#ENC[...,type:comment]`, or a list item of type
//!   `comment` inside lists); they are outside the MAC, so files that have them decrypt here,
//!   but a rewrite drops them.
//! - A rewrite keeps the data key, every key-wrapping entry and the ciphertext of every unchanged
//!   value, as sops does; changed values get a fresh IV.
//! - Output layout follows sops (4-space indent, armored keys as literal blocks), but strings are
//!   double-quoted unless plainly safe (`lastmodified`, `version`, clear values with spaces),
//!   because Go's YAML reader would take an unquoted timestamp for a time.
//! - Not supported (clear error): `key_groups`/Shamir, the `*_regex` encryption rules, JSON,
//!   dotenv, INI and binary files, several YAML documents in one file, non-string map keys,
//!   integers beyond 64-bit signed, age identities other than X25519 (plugins, SSH keys).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use indexmap::IndexMap;
use rand::RngCore;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_yaml_ng::{Mapping, Value as Yaml};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::{Location, SecretStore, StoreError, Versioned};
use crate::sensitive::SecretValue;

/// AES-256-GCM with the 32-byte nonce sops uses.
type SopsGcm = AesGcm<Aes256, U32>;

/// The sops release whose file format this module writes (`sops.version`).
pub const SOPS_FORMAT_VERSION: &str = "3.13.1";

/// The default suffix of keys whose values stay in clear.
pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// Written first into the MAC when `mac_only_encrypted` is set (sops' constant).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// An ordered map of a decrypted document.
pub type SopsMap = IndexMap<String, SopsValue>;

/// One node of a decrypted document. String leaves are wiped from memory when dropped; `Debug`
/// never prints a leaf.
#[derive(Clone, PartialEq)]
pub enum SopsValue {
    /// `null` (or an empty value); sops leaves it unencrypted.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (also multi-line ones and empty ones).
    Str(Zeroizing<String>),
    /// A list.
    List(Vec<SopsValue>),
    /// A map, in document order.
    Map(SopsMap),
}

impl SopsValue {
    /// A string leaf.
    pub fn string(value: impl Into<String>) -> Self {
        SopsValue::Str(Zeroizing::new(value.into()))
    }

    /// The value as Atmos returns it: a string as is, a number or boolean as its text, a map or
    /// list as JSON text. `None` for null.
    pub fn to_atmos_text(&self) -> Option<Zeroizing<String>> {
        match self {
            SopsValue::Null => None,
            SopsValue::Bool(b) => Some(Zeroizing::new(b.to_string())),
            SopsValue::Int(i) => Some(Zeroizing::new(i.to_string())),
            SopsValue::Float(f) => Some(Zeroizing::new(go_float(*f))),
            SopsValue::Str(s) => Some(s.clone()),
            SopsValue::List(_) | SopsValue::Map(_) => {
                // Reserve up front so the buffer holding plaintext is not reallocated (and the old
                // copy left behind) while it grows.
                let mut buf = Zeroizing::new(Vec::with_capacity(self.size_hint() * 2 + 64));
                if serde_json::to_writer(&mut *buf, self).is_err() {
                    return None;
                }
                let text = String::from_utf8(std::mem::take(&mut *buf)).ok()?;
                Some(Zeroizing::new(text))
            }
        }
    }

    fn size_hint(&self) -> usize {
        match self {
            SopsValue::Str(s) => s.len() + 2,
            SopsValue::List(l) => l.iter().map(|v| v.size_hint() + 1).sum(),
            SopsValue::Map(m) => m.iter().map(|(k, v)| k.len() + v.size_hint() + 4).sum(),
            _ => 24,
        }
    }
}

impl std::fmt::Debug for SopsValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SopsValue::Null => f.write_str("Null"),
            SopsValue::Bool(_) => f.write_str("Bool(<redacted>)"),
            SopsValue::Int(_) => f.write_str("Int(<redacted>)"),
            SopsValue::Float(_) => f.write_str("Float(<redacted>)"),
            SopsValue::Str(_) => f.write_str("Str(<redacted>)"),
            SopsValue::List(l) => f.debug_list().entries(l).finish(),
            SopsValue::Map(m) => f.debug_map().entries(m).finish(),
        }
    }
}

/// JSON rendering for maps and lists (what Atmos returns for non-string values).
impl Serialize for SopsValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SopsValue::Null => serializer.serialize_unit(),
            SopsValue::Bool(b) => serializer.serialize_bool(*b),
            SopsValue::Int(i) => serializer.serialize_i64(*i),
            SopsValue::Float(x) => serializer.serialize_f64(*x),
            SopsValue::Str(s) => serializer.serialize_str(s),
            SopsValue::List(l) => {
                let mut seq = serializer.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            SopsValue::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Why a SOPS document could not be read or written. Messages name key paths, never values.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The text is not valid YAML.
    #[error("invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Yaml {
        /// 1-based line, when known.
        line: Option<usize>,
        /// The parser's words.
        message: String,
    },
    /// Valid YAML, but not a SOPS document this module can read.
    #[error("not a valid SOPS document: {0}")]
    Format(String),
    /// A SOPS feature this module does not implement.
    #[error("unsupported SOPS feature: {0}")]
    Unsupported(String),
    /// None of the identities unwraps the data key.
    #[error("no age identity matches any recipient of the file (recipients: {})", recipients.join(", "))]
    NoMatchingIdentity {
        /// The file's age recipients (public keys).
        recipients: Vec<String>,
    },
    /// A value or the MAC fails authentication, or the MAC does not match the content.
    #[error("{0}")]
    Integrity(String),
    /// Key wrapping or random generation failed.
    #[error("encryption failed: {0}")]
    Crypto(String),
}

/// Which leaves are encrypted (sops' `unencrypted_suffix` / `encrypted_suffix`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
}

impl Rule {
    fn encrypts(&self, path: &[&str]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
        }
    }
}

/// One `sops.age[]` entry: a recipient and the data key wrapped for it (armored age file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeEntry {
    /// The age recipient (`age1...`).
    pub recipient: String,
    /// The armored age file holding the data key.
    pub enc: String,
}

/// A decrypted SOPS document: the plaintext tree, the data key and the metadata needed to write
/// it back for the same recipients.
pub struct SopsFile {
    data: SopsMap,
    data_key: Zeroizing<[u8; 32]>,
    age: Vec<AgeEntry>,
    rule: Rule,
    mac_only_encrypted: bool,
    lastmodified: String,
    /// Metadata entries this module does not interpret (pgp, kms, ...), kept on rewrite.
    other_metadata: Mapping,
    /// The data as last read or written (ciphertexts only), so that a rewrite keeps the
    /// ciphertext of every value that did not change, as sops does.
    raw: Mapping,
}

impl std::fmt::Debug for SopsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsFile")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("recipients", &self.recipients())
            .field("lastmodified", &self.lastmodified)
            .finish_non_exhaustive()
    }
}

impl SopsFile {
    /// An empty document with a fresh data key wrapped for each recipient.
    pub fn new(recipients: &[age::x25519::Recipient]) -> Result<Self, SopsError> {
        if recipients.is_empty() {
            return Err(SopsError::Crypto(
                "no age recipient to encrypt for".to_owned(),
            ));
        }
        let mut data_key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut data_key[..])
            .map_err(|e| SopsError::Crypto(format!("random data key: {e}")))?;
        let age = recipients
            .iter()
            .map(|r| {
                Ok(AgeEntry {
                    recipient: r.to_string(),
                    enc: wrap_data_key(&data_key, r)?,
                })
            })
            .collect::<Result<Vec<_>, SopsError>>()?;
        Ok(SopsFile {
            data: SopsMap::new(),
            data_key,
            age,
            rule: Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()),
            mac_only_encrypted: false,
            lastmodified: String::new(),
            other_metadata: Mapping::new(),
            raw: Mapping::new(),
        })
    }

    /// Decrypts a SOPS YAML document and verifies its MAC.
    pub fn decrypt(text: &str, identities: &[age::x25519::Identity]) -> Result<Self, SopsError> {
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| SopsError::Yaml {
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
        let Yaml::Mapping(mut top) = doc else {
            return Err(SopsError::Format("the document is not a map".to_owned()));
        };
        let Some(meta) = top.shift_remove("sops") else {
            return Err(SopsError::Format("no `sops` metadata key".to_owned()));
        };
        let Yaml::Mapping(mut meta) = meta else {
            return Err(SopsError::Format("`sops` is not a map".to_owned()));
        };

        let mut take_str = |name: &str| -> Result<Option<String>, SopsError> {
            match meta.shift_remove(name) {
                None | Some(Yaml::Null) => Ok(None),
                Some(Yaml::String(s)) => Ok(Some(s)),
                Some(_) => Err(SopsError::Format(format!("`sops.{name}` is not a string"))),
            }
        };
        let lastmodified = take_str("lastmodified")?
            .ok_or_else(|| SopsError::Format("no `sops.lastmodified`".to_owned()))?;
        let stored_mac =
            take_str("mac")?.ok_or_else(|| SopsError::Format("no `sops.mac`".to_owned()))?;
        let unencrypted_suffix = take_str("unencrypted_suffix")?;
        let encrypted_suffix = take_str("encrypted_suffix")?;
        // sops rewrites `version` on every write, so it is not kept.
        let _ = take_str("version")?;
        for name in [
            "unencrypted_regex",
            "encrypted_regex",
            "unencrypted_comment_regex",
            "encrypted_comment_regex",
            "key_groups",
        ] {
            if meta.get(name).is_some_and(|v| !v.is_null()) {
                return Err(SopsError::Unsupported(format!("`sops.{name}`")));
            }
        }
        let rule = match (unencrypted_suffix, encrypted_suffix) {
            (Some(_), Some(_)) => {
                return Err(SopsError::Format(
                    "both `unencrypted_suffix` and `encrypted_suffix` are set".to_owned(),
                ));
            }
            (Some(s), None) => Rule::UnencryptedSuffix(s),
            (None, Some(s)) => Rule::EncryptedSuffix(s),
            (None, None) => Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()),
        };
        let mac_only_encrypted = match meta.shift_remove("mac_only_encrypted") {
            None | Some(Yaml::Null) => false,
            Some(Yaml::Bool(b)) => b,
            Some(_) => {
                return Err(SopsError::Format(
                    "`sops.mac_only_encrypted` is not a boolean".to_owned(),
                ));
            }
        };
        let age = parse_age_entries(meta.shift_remove("age"))?;

        let data_key = unwrap_data_key(&age, identities)?;
        let mut file = SopsFile {
            data: SopsMap::new(),
            data_key,
            age,
            rule,
            mac_only_encrypted,
            lastmodified,
            other_metadata: meta,
            raw: top.clone(),
        };

        let mut mac = MacHasher::new(file.mac_only_encrypted);
        let mut path = Vec::new();
        let mut data = SopsMap::with_capacity(top.len());
        for (k, v) in top {
            let key = map_key(k, &path)?;
            path.push(key.clone());
            let value = file.decrypt_node(v, &mut path, &mut mac)?;
            path.pop();
            data.insert(key, value);
        }
        file.data = data;

        let computed = mac.finish();
        let aad = go_rfc3339(&file.lastmodified)?;
        let stored = decrypt_leaf(&stored_mac, &file.data_key, &aad).map_err(|e| match e {
            LeafError::Auth => SopsError::Integrity(
                "the stored MAC does not authenticate (tampered MAC or lastmodified)".to_owned(),
            ),
            LeafError::Format(m) => SopsError::Format(format!("`sops.mac`: {m}")),
        })?;
        match stored {
            SopsValue::Str(s) if s.as_str() == computed.as_str() => Ok(file),
            _ => Err(SopsError::Integrity(
                "MAC mismatch: the values do not match the stored MAC".to_owned(),
            )),
        }
    }

    /// The decrypted top-level map, in document order.
    pub fn data(&self) -> &SopsMap {
        &self.data
    }

    /// The decrypted top-level map, to change before [`SopsFile::encrypt`].
    pub fn data_mut(&mut self) -> &mut SopsMap {
        &mut self.data
    }

    /// The age recipients the data key is wrapped for.
    pub fn recipients(&self) -> Vec<&str> {
        self.age.iter().map(|a| a.recipient.as_str()).collect()
    }

    /// The version id of one top-level key: a MAC of the key and its value under the file's data
    /// key. It changes when that value changes (not when a neighbour does, as `lastmodified`
    /// would), and, being keyed by a secret, says nothing about the value to whoever reads it.
    pub fn key_version(&self, key: &str) -> Option<String> {
        use hmac::Mac;
        let text = self.data.get(key)?.to_atmos_text()?;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.data_key[..]).ok()?;
        mac.update(b"atmos-sops-version\0");
        mac.update(key.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(format!("k1-{}", hex::encode(&digest[..12])))
    }

    /// `sops.lastmodified` as read, or as set by the last [`SopsFile::encrypt`]; empty for a new
    /// document that was never encrypted.
    pub fn lastmodified(&self) -> &str {
        &self.lastmodified
    }

    /// Encrypts the tree into a SOPS YAML document stamped `now`, keeping the data key and the
    /// key-wrapping entries.
    pub fn encrypt(&mut self, now: DateTime<Utc>) -> Result<String, SopsError> {
        let lastmodified = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut mac = MacHasher::new(self.mac_only_encrypted);
        let mut path = Vec::new();
        let mut out = Mapping::with_capacity(self.data.len() + 1);
        for (k, v) in &self.data {
            path.push(k.clone());
            let node = self.encrypt_node(v, self.raw.get(k.as_str()), &mut path, &mut mac)?;
            path.pop();
            out.insert(Yaml::String(k.clone()), node);
        }
        let computed = mac.finish();
        let mac_enc = encrypt_leaf(&SopsValue::Str(computed), &self.data_key, &lastmodified)?;

        // sops writes its metadata keys in alphabetical order.
        let mut meta: std::collections::BTreeMap<String, Yaml> = std::collections::BTreeMap::new();
        for (k, v) in &self.other_metadata {
            if let Yaml::String(k) = k {
                meta.insert(k.clone(), v.clone());
            }
        }
        let age: Vec<Yaml> = self
            .age
            .iter()
            .map(|a| {
                let mut m = Mapping::new();
                m.insert("enc".into(), Yaml::String(a.enc.clone()));
                m.insert("recipient".into(), Yaml::String(a.recipient.clone()));
                Yaml::Mapping(m)
            })
            .collect();
        meta.insert("age".to_owned(), Yaml::Sequence(age));
        meta.insert(
            "lastmodified".to_owned(),
            Yaml::String(lastmodified.clone()),
        );
        meta.insert("mac".to_owned(), Yaml::String(mac_enc));
        match &self.rule {
            Rule::UnencryptedSuffix(s) => {
                meta.insert("unencrypted_suffix".to_owned(), s.as_str().into())
            }
            Rule::EncryptedSuffix(s) => {
                meta.insert("encrypted_suffix".to_owned(), s.as_str().into())
            }
        };
        if self.mac_only_encrypted {
            meta.insert("mac_only_encrypted".to_owned(), Yaml::Bool(true));
        }
        meta.insert("version".to_owned(), SOPS_FORMAT_VERSION.into());
        out.insert(
            "sops".into(),
            Yaml::Mapping(
                meta.into_iter()
                    .map(|(k, v)| (Yaml::String(k), v))
                    .collect(),
            ),
        );
        let mut text = String::new();
        emit::mapping(&mut text, &out, 0);
        out.shift_remove("sops");
        self.raw = out;
        self.lastmodified = lastmodified;
        Ok(text)
    }

    fn decrypt_node(
        &self,
        raw: Yaml,
        path: &mut Vec<String>,
        mac: &mut MacHasher,
    ) -> Result<SopsValue, SopsError> {
        match raw {
            Yaml::Mapping(m) => {
                let mut out = SopsMap::with_capacity(m.len());
                for (k, v) in m {
                    let key = map_key(k, path)?;
                    path.push(key.clone());
                    let value = self.decrypt_node(v, path, mac)?;
                    path.pop();
                    out.insert(key, value);
                }
                Ok(SopsValue::Map(out))
            }
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    // sops 3.x writes a comment inside a list as an encrypted list item of type
                    // `comment`; it is not data and not part of the MAC.
                    if is_list_comment(&item) {
                        continue;
                    }
                    out.push(self.decrypt_node(item, path, mac)?);
                }
                Ok(SopsValue::List(out))
            }
            Yaml::Null => Ok(SopsValue::Null),
            Yaml::Tagged(_) => Err(SopsError::Unsupported(format!(
                "tagged YAML value at `{}`",
                path.join(".")
            ))),
            leaf => {
                let encrypted = self.rule.encrypts(&path_refs(path));
                let value = if encrypted {
                    match leaf {
                        Yaml::String(s) if s.is_empty() => SopsValue::string(""),
                        Yaml::String(s) => decrypt_leaf(&s, &self.data_key, &aad(path)).map_err(
                            |e| match e {
                                LeafError::Auth => SopsError::Integrity(format!(
                                    "the value at `{}` does not authenticate (tampered ciphertext or wrong path)",
                                    path.join(".")
                                )),
                                LeafError::Format(m) => {
                                    SopsError::Format(format!("`{}`: {m}", path.join(".")))
                                }
                            },
                        )?,
                        _ => {
                            return Err(SopsError::Format(format!(
                                "`{}` should be encrypted but is a plain value",
                                path.join(".")
                            )));
                        }
                    }
                } else {
                    plain_leaf(leaf, path)?
                };
                if encrypted || !self.mac_only_encrypted {
                    mac.leaf(&value);
                }
                Ok(value)
            }
        }
    }

    /// Encrypts one node; `prior` is the node at the same place in the file as last read or
    /// written, whose ciphertext is kept when it still decrypts to the same value.
    fn encrypt_node(
        &self,
        value: &SopsValue,
        prior: Option<&Yaml>,
        path: &mut Vec<String>,
        mac: &mut MacHasher,
    ) -> Result<Yaml, SopsError> {
        match value {
            SopsValue::Map(m) => {
                let prior = prior.and_then(Yaml::as_mapping);
                let mut out = Mapping::with_capacity(m.len());
                for (k, v) in m {
                    path.push(k.clone());
                    let node =
                        self.encrypt_node(v, prior.and_then(|p| p.get(k.as_str())), path, mac)?;
                    path.pop();
                    out.insert(Yaml::String(k.clone()), node);
                }
                Ok(Yaml::Mapping(out))
            }
            SopsValue::List(items) => {
                let prior: Vec<&Yaml> = prior
                    .and_then(Yaml::as_sequence)
                    .map(|p| p.iter().filter(|y| !is_list_comment(y)).collect())
                    .unwrap_or_default();
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.encrypt_node(v, prior.get(i).copied(), path, mac))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Yaml::Sequence)
            }
            SopsValue::Null => Ok(Yaml::Null),
            leaf => {
                let encrypted = self.rule.encrypts(&path_refs(path));
                if encrypted || !self.mac_only_encrypted {
                    mac.leaf(leaf);
                }
                if !encrypted {
                    return Ok(match leaf {
                        SopsValue::Bool(b) => Yaml::Bool(*b),
                        SopsValue::Int(i) => Yaml::Number((*i).into()),
                        SopsValue::Float(f) => Yaml::Number((*f).into()),
                        SopsValue::Str(s) => Yaml::String(s.to_string()),
                        _ => Yaml::Null,
                    });
                }
                if let SopsValue::Str(s) = leaf
                    && s.is_empty()
                {
                    return Ok(Yaml::String(String::new()));
                }
                let aad = aad(path);
                if let Some(Yaml::String(enc)) = prior
                    && decrypt_leaf(enc, &self.data_key, &aad).is_ok_and(|old| old == *leaf)
                {
                    return Ok(Yaml::String(enc.clone()));
                }
                encrypt_leaf(leaf, &self.data_key, &aad).map(Yaml::String)
            }
        }
    }
}

/// sops 3.x writes a comment inside a list as an encrypted list item of type `comment`.
fn is_list_comment(item: &Yaml) -> bool {
    matches!(item, Yaml::String(s) if s.starts_with("ENC[") && s.ends_with(",type:comment]"))
}

fn path_refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// The additional data of a leaf: its key path joined by `:`, plus a trailing `:`.
fn aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

fn map_key(k: Yaml, path: &[String]) -> Result<String, SopsError> {
    match k {
        Yaml::String(s) => Ok(s),
        _ => Err(SopsError::Unsupported(format!(
            "a non-string map key under `{}`",
            if path.is_empty() {
                "<top>".to_owned()
            } else {
                path.join(".")
            }
        ))),
    }
}

fn plain_leaf(leaf: Yaml, path: &[String]) -> Result<SopsValue, SopsError> {
    match leaf {
        Yaml::Bool(b) => Ok(SopsValue::Bool(b)),
        Yaml::String(s) => Ok(SopsValue::string(s)),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(SopsValue::Int(i))
            } else if n.is_f64() {
                Ok(SopsValue::Float(n.as_f64().unwrap_or(f64::NAN)))
            } else {
                Err(SopsError::Unsupported(format!(
                    "an integer out of the 64-bit signed range at `{}`",
                    path.join(".")
                )))
            }
        }
        _ => Err(SopsError::Format(format!(
            "unexpected value at `{}`",
            path.join(".")
        ))),
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (sops' MAC and `float` type).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display is also shortest-round-trip without an exponent.
        f.to_string()
    }
}

/// `lastmodified` as Go re-formats it with `time.RFC3339` (the MAC's additional data).
fn go_rfc3339(lastmodified: &str) -> Result<String, SopsError> {
    let t: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(lastmodified)
        .map_err(|e| SopsError::Format(format!("`sops.lastmodified` is not RFC 3339: {e}")))?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The running SHA-512 of the MAC.
struct MacHasher(Sha512);

impl MacHasher {
    fn new(mac_only_encrypted: bool) -> Self {
        let mut h = Sha512::new();
        if mac_only_encrypted {
            h.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        MacHasher(h)
    }

    fn leaf(&mut self, value: &SopsValue) {
        match value {
            SopsValue::Str(s) => self.0.update(s.as_bytes()),
            SopsValue::Int(i) => self.0.update(i.to_string()),
            SopsValue::Float(f) => self.0.update(go_float(*f)),
            SopsValue::Bool(true) => self.0.update("True"),
            SopsValue::Bool(false) => self.0.update("False"),
            SopsValue::Null | SopsValue::List(_) | SopsValue::Map(_) => {}
        }
    }

    fn finish(self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode_upper(self.0.finalize()))
    }
}

enum LeafError {
    /// GCM authentication failed.
    Auth,
    /// Not an `ENC[...]` value, or a bad field in it.
    Format(String),
}

/// Decrypts one `ENC[AES256_GCM,...]` value.
fn decrypt_leaf(enc: &str, key: &[u8; 32], aad: &str) -> Result<SopsValue, LeafError> {
    let fmt_err = |m: &str| LeafError::Format(m.to_owned());
    let body = enc
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| fmt_err("not an ENC[AES256_GCM,...] value"))?;
    let mut parts = body.split(',');
    let mut field = |name: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| LeafError::Format(format!("missing `{name}` in the encrypted value")))
    };
    let data = field("data:")?;
    let iv = field("iv:")?;
    let tag = field("tag:")?;
    let ty = field("type:")?;
    if parts.next().is_some() {
        return Err(fmt_err("unexpected fields in the encrypted value"));
    }
    let b64 = |s: &str, name: &str| {
        B64.decode(s)
            .map_err(|_| LeafError::Format(format!("`{name}` is not base64")))
    };
    let mut msg = b64(data, "data")?;
    let iv = b64(iv, "iv")?;
    msg.extend(b64(tag, "tag")?);
    if iv.len() != 32 {
        // sops always writes 32-byte IVs; other sizes would need another GCM instance.
        return Err(fmt_err("the IV is not 32 bytes"));
    }
    let cipher = SopsGcm::new(key.into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::<U32>::from_slice(&iv),
                Payload {
                    msg: &msg,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| LeafError::Auth)?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| fmt_err("the plaintext is not UTF-8"))?;
    let bad = |t: &str| LeafError::Format(format!("the plaintext is not a valid `{t}`"));
    match ty {
        "str" | "bytes" | "time" => Ok(SopsValue::string(text)),
        "int" => text.parse().map(SopsValue::Int).map_err(|_| bad("int")),
        "float" => text.parse().map(SopsValue::Float).map_err(|_| bad("float")),
        "comment" => Err(fmt_err("a comment where a value is expected")),
        "bool" => match text {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(SopsValue::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(SopsValue::Bool(false)),
            _ => Err(bad("bool")),
        },
        other => Err(LeafError::Format(format!("unknown value type `{other}`"))),
    }
}

/// Encrypts one scalar leaf with a fresh random IV.
fn encrypt_leaf(value: &SopsValue, key: &[u8; 32], aad: &str) -> Result<String, SopsError> {
    let (ty, plain): (&str, Zeroizing<String>) = match value {
        SopsValue::Str(s) => ("str", s.clone()),
        SopsValue::Int(i) => ("int", Zeroizing::new(i.to_string())),
        SopsValue::Float(f) => ("float", Zeroizing::new(go_float(*f))),
        SopsValue::Bool(b) => (
            "bool",
            Zeroizing::new(if *b { "True" } else { "False" }.to_owned()),
        ),
        _ => return Err(SopsError::Crypto("only scalars are encrypted".to_owned())),
    };
    let mut iv = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|e| SopsError::Crypto(format!("random IV: {e}")))?;
    let cipher = SopsGcm::new(key.into());
    let mut out = cipher
        .encrypt(
            Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: plain.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SopsError::Crypto("AES-GCM".to_owned()))?;
    let tag = out.split_off(out.len() - 16);
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{ty}]",
        B64.encode(&out),
        B64.encode(iv),
        B64.encode(tag)
    ))
}

fn parse_age_entries(raw: Option<Yaml>) -> Result<Vec<AgeEntry>, SopsError> {
    let items = match raw {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Sequence(items)) => items,
        Some(_) => return Err(SopsError::Format("`sops.age` is not a list".to_owned())),
    };
    items
        .into_iter()
        .map(|item| {
            let get = |name: &str| {
                item.get(name)
                    .and_then(Yaml::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| SopsError::Format(format!("a `sops.age` entry has no `{name}`")))
            };
            Ok(AgeEntry {
                recipient: get("recipient")?,
                enc: get("enc")?,
            })
        })
        .collect()
}

/// Wraps the data key for one recipient as an armored age file, as sops does.
fn wrap_data_key(key: &[u8; 32], recipient: &age::x25519::Recipient) -> Result<String, SopsError> {
    let err = |e: &dyn std::fmt::Display| SopsError::Crypto(format!("age: {e}"));
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| err(&e))?;
    let mut buf = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut buf, age::armor::Format::AsciiArmor)
        .map_err(|e| err(&e))?;
    let mut w = encryptor.wrap_output(armor).map_err(|e| err(&e))?;
    w.write_all(key).map_err(|e| err(&e))?;
    w.finish().and_then(|a| a.finish()).map_err(|e| err(&e))?;
    String::from_utf8(buf).map_err(|e| err(&e))
}

/// Unwraps the data key with the first entry one of the identities opens.
fn unwrap_data_key(
    entries: &[AgeEntry],
    identities: &[age::x25519::Identity],
) -> Result<Zeroizing<[u8; 32]>, SopsError> {
    let ids = || identities.iter().map(|i| i as &dyn age::Identity);
    // A wrapped key that an identity opens but that fails authentication is tampered, not a
    // missing key; remember it in case no other entry works.
    let mut damaged = None;
    for entry in entries {
        let reader = age::armor::ArmoredReader::new(entry.enc.as_bytes());
        let opened = age::Decryptor::new(reader).and_then(|d| d.decrypt(ids()));
        let mut r = match opened {
            Ok(r) => r,
            Err(age::DecryptError::NoMatchingKeys) => continue,
            Err(e) => {
                damaged.get_or_insert_with(|| (entry.recipient.clone(), e.to_string()));
                continue;
            }
        };
        let mut key = Zeroizing::new(Vec::with_capacity(33));
        if let Err(e) = r.read_to_end(&mut key) {
            damaged.get_or_insert_with(|| (entry.recipient.clone(), e.to_string()));
            continue;
        }
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
            SopsError::Format(format!(
                "the data key for {} is not 32 bytes",
                entry.recipient
            ))
        })?;
        return Ok(Zeroizing::new(key));
    }
    if let Some((recipient, why)) = damaged {
        return Err(SopsError::Integrity(format!(
            "the data key wrapped for {recipient} cannot be unwrapped: {why}"
        )));
    }
    Err(SopsError::NoMatchingIdentity {
        recipients: entries.iter().map(|e| e.recipient.clone()).collect(),
    })
}

/// Parses age identities (`AGE-SECRET-KEY-1...` lines; `#` comments and blank lines skipped), the
/// format of `age-keygen` output and of `SOPS_AGE_KEY`.
pub fn parse_identities(text: &str) -> Result<Vec<age::x25519::Identity>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| {
            format!(
                "line {}: not an age X25519 identity (AGE-SECRET-KEY-1...)",
                n + 1
            )
        })?;
        out.push(id);
    }
    if out.is_empty() {
        return Err("no age identity found".to_owned());
    }
    Ok(out)
}

/// Where the age identities come from, in sops' order of precedence for this provider.
pub const SOPS_AGE_KEY_FILE_ENV: &str = "SOPS_AGE_KEY_FILE";
/// Identities given inline (the content of a key file).
pub const SOPS_AGE_KEY_ENV: &str = "SOPS_AGE_KEY";

/// One file as this process last saw it: `None` when the file does not exist.
type Cached = Arc<Option<SopsFile>>;

/// The `sops/age` store: each [`Location::SopsKey`] is one top-level key of a SOPS YAML file.
///
/// Reads decrypt a file once per process and serve later reads from memory; this store's own
/// writes replace the cached copy. Writes re-read the file from disk under a per-file lock, change
/// one key, and replace the file atomically, so concurrent writers in this process never lose each
/// other's keys.
///
/// `delete` of the last key leaves a valid SOPS file with an empty data map (it keeps the file's
/// recipients for later writes, and `sops -d` still opens it).
///
/// The version of a value is [`SopsFile::key_version`]: a MAC of that key and its value under
/// the file's data key, so it changes exactly when that value changes (not when another key of
/// the file is written) and reveals nothing about the value. A null value reads as unset.
///
/// The per-file lock covers writers in this process only; a concurrent `sops` edit of the same
/// file from another process can still be overwritten (last writer wins).
pub struct SopsStore {
    identities: Vec<age::x25519::Identity>,
    recipients: Vec<age::x25519::Recipient>,
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

impl std::fmt::Debug for SopsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsStore")
            .field("identities", &self.identities.len())
            .field(
                "recipients",
                &self
                    .recipients
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SopsStore {
    /// A store reading identities from `key_file`, or when it is `None` from the file named by
    /// `SOPS_AGE_KEY_FILE`, or from `SOPS_AGE_KEY`, or from sops' default key file
    /// (`$XDG_CONFIG_HOME/sops/age/keys.txt`). New files are encrypted for `recipients`
    /// (`age1...`), or for the identities' own public keys when the list is empty.
    pub fn open(key_file: Option<&Path>, recipients: &[String]) -> Result<Self, StoreError> {
        Self::open_with_env(key_file, recipients, |name| std::env::var(name).ok())
    }

    /// [`SopsStore::open`] with the environment given as a lookup (for tests and embedding).
    pub fn open_with_env(
        key_file: Option<&Path>,
        recipients: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let (source, text) = key_source(key_file, &env)?;
        let identities = parse_identities(&text)
            .map_err(|m| StoreError::Config(format!("sops/age: age key from {source}: {m}")))?;
        let recipients = recipients
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r.trim()).map_err(|_| {
                    StoreError::Config(format!(
                        "sops/age: `{r}` is not an age X25519 recipient (age1...)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(identities, recipients))
    }

    /// A store from parsed identities and recipients (empty recipients: the identities' public
    /// keys).
    pub fn new(
        identities: Vec<age::x25519::Identity>,
        mut recipients: Vec<age::x25519::Recipient>,
    ) -> Self {
        if recipients.is_empty() {
            recipients = identities
                .iter()
                .map(age::x25519::Identity::to_public)
                .collect();
        }
        SopsStore {
            identities,
            recipients,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The lock of one file, shared by every store in the process (two stores may name the same
    /// file).
    fn file_lock(&self, file: &Path) -> Arc<tokio::sync::Mutex<()>> {
        static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
            LazyLock::new(Default::default);
        let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(file.to_path_buf()).or_default().clone()
    }

    fn cached(&self, file: &Path) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(file).cloned()
    }

    fn remember(&self, file: &Path, entry: Cached) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(file.to_path_buf(), entry);
    }

    /// Reads and decrypts a file from disk (`None` when it does not exist).
    async fn load(&self, file: &Path) -> Result<Option<SopsFile>, StoreError> {
        let text = match tokio::fs::read(file).await {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Unavailable {
                    location: file.display().to_string(),
                    message: format!("cannot read: {e}"),
                });
            }
        };
        let text = std::str::from_utf8(&text).map_err(|_| StoreError::Other {
            location: file.display().to_string(),
            message: "not a UTF-8 text file".to_owned(),
        })?;
        SopsFile::decrypt(text, &self.identities)
            .map(Some)
            .map_err(|e| to_store_error(file, e))
    }

    /// The cached file, decrypting it on first use.
    async fn get(&self, file: &Path) -> Result<Cached, StoreError> {
        if let Some(hit) = self.cached(file) {
            return Ok(hit);
        }
        let lock = self.file_lock(file);
        let _guard = lock.lock().await;
        // Another task may have loaded it while this one waited.
        if let Some(hit) = self.cached(file) {
            return Ok(hit);
        }
        let entry = Arc::new(self.load(file).await?);
        self.remember(file, entry.clone());
        Ok(entry)
    }

    /// Read-modify-write of one file under its lock. `change` returns whether it changed the
    /// data; nothing is written when it did not.
    async fn modify(
        &self,
        file: &Path,
        create: bool,
        change: impl FnOnce(&mut SopsMap) -> bool,
    ) -> Result<Option<String>, StoreError> {
        let lock = self.file_lock(file);
        let _guard = lock.lock().await;
        // Always start from the file on disk, so changes made by others since our cached read
        // are kept.
        let current = self.load(file).await?;
        let mut sops = match current {
            Some(f) => f,
            None if !create => {
                self.remember(file, Arc::new(None));
                return Ok(None);
            }
            None => SopsFile::new(&self.recipients).map_err(|e| to_store_error(file, e))?,
        };
        if !change(sops.data_mut()) {
            let version = sops.lastmodified().to_owned();
            self.remember(file, Arc::new(Some(sops)));
            return Ok(Some(version));
        }
        let text = sops
            .encrypt(Utc::now())
            .map_err(|e| to_store_error(file, e))?;
        let path = file.to_path_buf();
        tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes()))
            .await
            .map_err(|e| StoreError::Other {
                location: file.display().to_string(),
                message: format!("write task failed: {e}"),
            })?
            .map_err(|e| StoreError::Unavailable {
                location: file.display().to_string(),
                message: format!("cannot write: {e}"),
            })?;
        let version = sops.lastmodified().to_owned();
        self.remember(file, Arc::new(Some(sops)));
        Ok(Some(version))
    }
}

/// Where the identities come from: the configured file, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`,
/// then sops' default `$XDG_CONFIG_HOME/sops/age/keys.txt` (`~/.config/...` without it), when
/// that file exists. Returns a description of the source (never the key) and the text.
fn key_source(
    key_file: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(String, Zeroizing<String>), StoreError> {
    if let Some(path) = key_file {
        return Ok((path.display().to_string(), read_key_file(path)?));
    }
    let set = |name: &str| env(name).filter(|s| !s.is_empty());
    if let Some(path) = set(SOPS_AGE_KEY_FILE_ENV) {
        let text = read_key_file(Path::new(&path))?;
        return Ok((format!("{path} ({SOPS_AGE_KEY_FILE_ENV})"), text));
    }
    if let Some(text) = set(SOPS_AGE_KEY_ENV) {
        return Ok((SOPS_AGE_KEY_ENV.to_owned(), Zeroizing::new(text)));
    }
    let config_dir = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(default) = config_dir.map(|d| d.join("sops/age/keys.txt"))
        && default.is_file()
    {
        let text = read_key_file(&default)?;
        return Ok((default.display().to_string(), text));
    }
    Err(StoreError::Config(format!(
        "sops/age: no age key: set the store's key file, {SOPS_AGE_KEY_FILE_ENV} or \
         {SOPS_AGE_KEY_ENV}, or create $XDG_CONFIG_HOME/sops/age/keys.txt"
    )))
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>, StoreError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| {
            StoreError::Config(format!(
                "sops/age: cannot read age key file {}: {e}",
                path.display()
            ))
        })
}

fn to_store_error(file: &Path, e: SopsError) -> StoreError {
    let location = file.display().to_string();
    match e {
        SopsError::Integrity(message) => StoreError::Integrity { location, message },
        SopsError::NoMatchingIdentity { .. } => StoreError::Denied {
            location,
            message: format!("cannot decrypt: {e}"),
        },
        other => StoreError::Other {
            location,
            message: other.to_string(),
        },
    }
}

/// Replaces `path` with `bytes`: a temporary file in the same directory, fsync, rename, fsync of
/// the directory. An existing file's permissions are kept; a new file is private (0600). Missing
/// parent directories are created.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Through a symlink, replace its target rather than the link.
    let resolved = std::fs::canonicalize(path).ok();
    let path = resolved.as_deref().unwrap_or(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sops-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// The file (made absolute, so that one file has one cache entry and one lock) and the key.
fn sops_location(location: &Location) -> Result<(PathBuf, &str), StoreError> {
    match location {
        Location::SopsKey { file, key } => {
            let file = std::path::absolute(file).map_err(|e| StoreError::Other {
                location: location.to_string(),
                message: format!("cannot resolve the path: {e}"),
            })?;
            Ok((file, key.as_str()))
        }
        Location::Named(name) => Err(StoreError::Config(format!(
            "sops/age: `{name}` is not a SOPS file location (file and key)"
        ))),
    }
}

#[async_trait]
impl SecretStore for SopsStore {
    fn kind(&self) -> &'static str {
        "sops/age"
    }

    async fn read(&self, location: &Location) -> Result<Option<Versioned>, StoreError> {
        let (file, key) = sops_location(location)?;
        let entry = self.get(&file).await?;
        let Some(sops) = entry.as_ref() else {
            return Ok(None);
        };
        let Some(mut text) = sops.data().get(key).and_then(SopsValue::to_atmos_text) else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: SecretValue::new(std::mem::take(&mut *text)),
            version: sops.key_version(key),
        }))
    }

    async fn write(&self, location: &Location, value: &SecretValue) -> Result<String, StoreError> {
        let (file, key) = sops_location(location)?;
        // Atmos passes strings: a value that looks like JSON is still stored as a string.
        let version = self
            .modify(&file, true, |data| {
                let new = SopsValue::string(value.expose());
                if data.get(key) == Some(&new) {
                    return false;
                }
                data.insert(key.to_owned(), new);
                true
            })
            .await?;
        if version.is_none() {
            return Err(StoreError::Other {
                location: location.to_string(),
                message: "the file vanished during the write".to_owned(),
            });
        }
        // The per-key version of what is now in the file (cached by `modify`).
        let entry = self.get(&file).await?;
        entry
            .as_ref()
            .as_ref()
            .and_then(|sops| sops.key_version(key))
            .ok_or_else(|| StoreError::Other {
                location: location.to_string(),
                message: "the value is missing right after the write".to_owned(),
            })
    }

    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        let (file, key) = sops_location(location)?;
        self.modify(&file, false, |data| data.shift_remove(key).is_some())
            .await?;
        Ok(())
    }

    async fn exists(&self, location: &Location) -> Result<bool, StoreError> {
        let (file, key) = sops_location(location)?;
        let entry = self.get(&file).await?;
        Ok(entry
            .as_ref()
            .as_ref()
            .and_then(|s| s.data().get(key))
            .is_some_and(|v| *v != SopsValue::Null))
    }
}

/// A small YAML emitter with the layout sops writes (4-space indent, sequences indented under
/// their key, armored keys as literal blocks). It exists because serde_yaml_ng resolves plain
/// scalars by YAML 1.2 rules while sops (Go yaml.v3) also reads timestamps: an unquoted
/// `lastmodified` or date-like string would come back as a time. So every string that is not
/// plainly safe is double-quoted.
mod emit {
    use serde_yaml_ng::{Mapping, Value as Yaml};

    pub(super) fn mapping(out: &mut String, m: &Mapping, indent: usize) {
        for (i, (k, v)) in m.iter().enumerate() {
            // In a sequence item the first key follows the `- ` already written.
            if i > 0 || !out.ends_with("- ") {
                pad(out, indent);
            }
            match k {
                Yaml::String(k) => string(out, k),
                other => scalar(out, other),
            }
            out.push(':');
            value(out, v, indent);
        }
    }

    /// A value after `key:` or `- `.
    fn value(out: &mut String, v: &Yaml, indent: usize) {
        let after_dash = out.ends_with("- ");
        match v {
            Yaml::Mapping(m) if !m.is_empty() => {
                if after_dash {
                    mapping(out, m, indent + 2);
                } else {
                    out.push('\n');
                    mapping(out, m, indent + 4);
                }
            }
            Yaml::Sequence(items) if !items.is_empty() => {
                if after_dash {
                    sequence(out, items, indent + 2);
                } else {
                    out.push('\n');
                    sequence(out, items, indent + 4);
                }
            }
            Yaml::String(s) if literal_block_ok(s) => {
                if !after_dash {
                    out.push(' ');
                }
                out.push_str("|\n");
                for line in s.lines() {
                    pad(out, indent + 4);
                    out.push_str(line);
                    out.push('\n');
                }
            }
            other => {
                if !after_dash {
                    out.push(' ');
                }
                scalar(out, other);
                out.push('\n');
            }
        }
    }

    fn sequence(out: &mut String, items: &[Yaml], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !out.ends_with("- ") {
                pad(out, indent);
            }
            out.push_str("- ");
            value(out, item, indent);
        }
    }

    fn pad(out: &mut String, indent: usize) {
        out.extend(std::iter::repeat_n(' ', indent));
    }

    fn scalar(out: &mut String, v: &Yaml) {
        match v {
            Yaml::Null => out.push_str("null"),
            Yaml::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Yaml::Number(n) => {
                if let Some(i) = n.as_i64() {
                    out.push_str(&i.to_string());
                } else if let Some(u) = n.as_u64() {
                    out.push_str(&u.to_string());
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.is_nan() {
                        out.push_str(".nan");
                    } else if f.is_infinite() {
                        out.push_str(if f > 0.0 { ".inf" } else { "-.inf" });
                    } else {
                        // Debug keeps a `.0` or an exponent, so the number reads back as a float.
                        out.push_str(&format!("{f:?}"));
                    }
                }
            }
            Yaml::String(s) => string(out, s),
            Yaml::Mapping(_) => out.push_str("{}"),
            Yaml::Sequence(_) => out.push_str("[]"),
            Yaml::Tagged(_) => out.push_str("null"),
        }
    }

    /// Writes a string plain when no YAML reader can take it for anything else, quoted otherwise.
    pub(super) fn string(out: &mut String, s: &str) {
        if plain_ok(s) {
            out.push_str(s);
            return;
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                // Control characters, and the characters YAML readers treat as line breaks or
                // byte-order marks, are escaped so they survive reading.
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                    out.push_str(&format!("\\u{:04X}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn plain_ok(s: &str) -> bool {
        if let Some(body) = s
            .strip_prefix("ENC[AES256_GCM,")
            .and_then(|r| r.strip_suffix(']'))
        {
            return body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | ':' | ','));
        }
        let Some(first) = s.chars().next() else {
            return false;
        };
        (first.is_ascii_alphabetic() || first == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            && !matches!(
                s.to_ascii_lowercase().as_str(),
                "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
            )
    }

    /// Literal blocks only for simple text ending in one newline (the armored age files).
    fn literal_block_ok(s: &str) -> bool {
        s.ends_with('\n')
            && !s.ends_with("\n\n")
            && s.lines().all(|l| {
                !l.is_empty()
                    && !l.starts_with([' ', '\t'])
                    && !l.ends_with([' ', '\t'])
                    && !l.chars().any(|c| {
                        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
                    })
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/sops/secrets.enc.yaml");
    const FIXTURE_KEY: &str = include_str!("../../tests/fixtures/sops/key.txt");

    fn fixture_ids() -> Vec<age::x25519::Identity> {
        parse_identities(FIXTURE_KEY).unwrap()
    }

    fn s(v: &SopsValue) -> &str {
        match v {
            SopsValue::Str(s) => s.as_str(),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn sample_tree() -> SopsMap {
        let mut db = SopsMap::new();
        db.insert("password".into(), SopsValue::string("hunter2"));
        db.insert("port".into(), SopsValue::Int(5432));
        db.insert("ratio".into(), SopsValue::Float(0.25));
        db.insert("on".into(), SopsValue::Bool(true));
        db.insert("empty".into(), SopsValue::string(""));
        db.insert("none".into(), SopsValue::Null);
        let mut m = SopsMap::new();
        m.insert("zeta".into(), SopsValue::Map(db));
        m.insert(
            "list".into(),
            SopsValue::List(vec![
                SopsValue::string("a"),
                SopsValue::Int(-2),
                SopsValue::List(vec![SopsValue::Bool(false)]),
            ]),
        );
        m.insert("multi".into(), SopsValue::string("line1\nline2\n"));
        m.insert("note_unencrypted".into(), SopsValue::string("in clear"));
        m.insert("alpha".into(), SopsValue::string("{\"a\": 1}"));
        m
    }

    fn encrypted_sample() -> (String, Vec<age::x25519::Identity>) {
        let id = age::x25519::Identity::generate();
        let mut file = SopsFile::new(&[id.to_public()]).unwrap();
        *file.data_mut() = sample_tree();
        let text = file.encrypt(Utc::now()).unwrap();
        (text, vec![id])
    }

    #[test]
    fn decrypts_a_file_written_by_sops() {
        let file = SopsFile::decrypt(FIXTURE, &fixture_ids()).unwrap();
        let d = file.data();
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "db",
                "list",
                "multi",
                "folded",
                "token_unencrypted",
                "nested_unencrypted",
                "api_key"
            ]
        );
        let SopsValue::Map(db) = &d["db"] else {
            panic!("db is not a map")
        };
        assert_eq!(s(&db["password"]), "s3cret");
        assert_eq!(db["port"], SopsValue::Int(5432));
        assert_eq!(db["ratio"], SopsValue::Float(1.5));
        assert_eq!(db["enabled"], SopsValue::Bool(true));
        assert_eq!(db["disabled"], SopsValue::Bool(false));
        assert_eq!(s(&db["empty"]), "");
        assert_eq!(db["nothing"], SopsValue::Null);
        // The comment inside the list is dropped, not returned as an item.
        let SopsValue::List(list) = &d["list"] else {
            panic!("list is not a list")
        };
        assert_eq!(list.len(), 4);
        assert_eq!(s(&list[0]), "a");
        assert_eq!(list[1], SopsValue::Int(2));
        assert_eq!(
            list[3],
            SopsValue::List(vec![SopsValue::string("nested"), SopsValue::Float(3.25)])
        );
        assert_eq!(s(&d["multi"]), "line1\nline2\n");
        assert_eq!(s(&d["folded"]), "folded text");
        assert_eq!(s(&d["token_unencrypted"]), "visible");
        assert_eq!(s(&d["api_key"]), r#"{"looks": "like json"}"#);
        assert!(
            go_rfc3339(file.lastmodified()).is_ok(),
            "{}",
            file.lastmodified()
        );
    }

    #[test]
    fn round_trips_a_tree_in_order() {
        let (text, ids) = encrypted_sample();
        assert!(!text.contains("hunter2"), "plaintext leaked into the file");
        assert!(text.contains("note_unencrypted: \"in clear\""), "{text}");
        assert!(
            text.contains("empty: ''") || text.contains("empty: \"\""),
            "{text}"
        );
        assert!(text.contains("unencrypted_suffix: _unencrypted"));
        assert!(
            text.contains(&format!("    version: \"{SOPS_FORMAT_VERSION}\"\n")),
            "{text}"
        );
        let back = SopsFile::decrypt(&text, &ids).unwrap();
        assert_eq!(back.data(), &sample_tree());
        assert_eq!(back.recipients(), vec![ids[0].to_public().to_string()]);
    }

    #[test]
    fn rewrite_keeps_the_data_key_and_recipients() {
        let file = SopsFile::decrypt(FIXTURE, &fixture_ids()).unwrap();
        let mut file = file;
        let enc_before = file.age.clone();
        file.data_mut()
            .insert("added".into(), SopsValue::string("v"));
        let text = file.encrypt(Utc::now()).unwrap();
        let again = SopsFile::decrypt(&text, &fixture_ids()).unwrap();
        assert_eq!(again.age, enc_before);
        assert_eq!(s(&again.data()["added"]), "v");
        assert_eq!(again.data().len(), 8);
    }

    /// Every `ENC[...]` value of a document except comments and the MAC.
    fn value_ciphertexts(text: &str) -> Vec<&str> {
        let mac = text
            .lines()
            .find(|l| l.trim_start().starts_with("mac: "))
            .unwrap();
        text.match_indices("ENC[AES256_GCM,")
            .map(|(at, _)| &text[at..at + text[at..].find(']').unwrap() + 1])
            .filter(|e| !e.ends_with("type:comment]") && !mac.contains(e))
            .collect()
    }

    #[test]
    fn rewrite_keeps_the_ciphertext_of_unchanged_values_only() {
        let mut file = SopsFile::decrypt(FIXTURE, &fixture_ids()).unwrap();
        let multi = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("multi: "))
                .unwrap()
                .to_owned()
        };
        file.data_mut()
            .insert("multi".into(), SopsValue::string("changed"));
        let text = file.encrypt(Utc::now()).unwrap();
        let kept = value_ciphertexts(&text);
        let old_multi = multi(FIXTURE);
        for enc in value_ciphertexts(FIXTURE) {
            if old_multi.contains(enc) {
                assert!(
                    !kept.contains(&enc),
                    "the changed value kept its ciphertext"
                );
            } else {
                assert!(kept.contains(&enc), "an unchanged value was re-encrypted");
            }
        }
        assert_eq!(kept.len(), value_ciphertexts(FIXTURE).len());
        let back = SopsFile::decrypt(&text, &fixture_ids()).unwrap();
        assert_eq!(s(&back.data()["multi"]), "changed");
    }

    #[test]
    fn tampered_ciphertext_is_an_integrity_error() {
        let (text, ids) = encrypted_sample();
        // Flip one base64 character of the first encrypted value's data.
        let at = text.find("ENC[AES256_GCM,data:").unwrap() + "ENC[AES256_GCM,data:".len();
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let err = SopsFile::decrypt(&tampered, &ids).unwrap_err();
        assert!(matches!(err, SopsError::Integrity(_)), "{err}");
    }

    #[test]
    fn swapped_values_fail_because_the_path_is_authenticated() {
        let (text, ids) = encrypted_sample();
        let line_of = |key: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap()
                .split_once(": ")
                .unwrap()
                .1
                .to_owned()
        };
        let (a, m) = (line_of("alpha:"), line_of("multi:"));
        let swapped = text.replace(&a, "@@A").replace(&m, &a).replace("@@A", &m);
        assert!(matches!(
            SopsFile::decrypt(&swapped, &ids),
            Err(SopsError::Integrity(_))
        ));
    }

    #[test]
    fn tampered_mac_or_plain_value_or_timestamp_is_an_integrity_error() {
        let (text, ids) = encrypted_sample();
        let new_mac = {
            let mut f = SopsFile::decrypt(&text, &ids).unwrap();
            f.data_mut().insert("other".into(), SopsValue::string("x"));
            let t = f.encrypt(Utc::now()).unwrap();
            t.lines()
                .find(|l| l.trim_start().starts_with("mac:"))
                .unwrap()
                .to_owned()
        };
        let old_mac = text
            .lines()
            .find(|l| l.trim_start().starts_with("mac:"))
            .unwrap();
        for (what, bad) in [
            ("mac from another version", text.replace(old_mac, &new_mac)),
            ("unencrypted value", text.replace("in clear", "changed")),
            (
                "lastmodified",
                text.lines()
                    .map(|l| {
                        if l.trim_start().starts_with("lastmodified:") {
                            "    lastmodified: '2001-01-01T00:00:00Z'".to_owned()
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ] {
            let err = SopsFile::decrypt(&bad, &ids).unwrap_err();
            assert!(matches!(err, SopsError::Integrity(_)), "{what}: {err}");
        }
    }

    #[test]
    fn wrong_identity_names_the_recipients_not_the_values() {
        let (text, ids) = encrypted_sample();
        let other = age::x25519::Identity::generate();
        let err = SopsFile::decrypt(&text, &[other]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SopsError::NoMatchingIdentity { .. }));
        assert!(msg.contains(&ids[0].to_public().to_string()), "{msg}");
        assert!(msg.contains("no age identity matches"), "{msg}");
        assert!(!msg.contains("hunter2"));
    }

    #[test]
    fn a_tampered_wrapped_data_key_is_an_integrity_error() {
        let (text, ids) = encrypted_sample();
        // Flip a character of the armored age payload (the last base64 line before the END
        // marker: the encrypted data key and its tag). Tampering the recipient stanza instead
        // would read as "no identity matches", which age cannot tell from a wrong key.
        let end = text.find("-----END AGE ENCRYPTED FILE-----").unwrap();
        let last_line_end = text[..end].trim_end().len();
        let last_line_start = text[..last_line_end].rfind('\n').unwrap() + 1;
        let first = last_line_start + text[last_line_start..].find(|c: char| c != ' ').unwrap();
        let at = first + 1;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let err = SopsFile::decrypt(&tampered, &ids).unwrap_err();
        assert!(matches!(err, SopsError::Integrity(_)), "{err}");
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let err = SopsFile::decrypt("a: 1\nb: [unclosed\nc: 2\n", &fixture_ids()).unwrap_err();
        let SopsError::Yaml { line, .. } = &err else {
            panic!("{err}")
        };
        assert!(line.is_some_and(|l| l >= 2), "{err}");
        assert!(err.to_string().contains("at line"), "{err}");
    }

    #[test]
    fn plain_yaml_without_metadata_is_rejected() {
        let err = SopsFile::decrypt("a: 1\n", &fixture_ids()).unwrap_err();
        assert!(err.to_string().contains("no `sops` metadata"), "{err}");
    }

    #[test]
    fn unsupported_rules_are_named() {
        let text = FIXTURE.replace(
            "unencrypted_suffix: _unencrypted",
            "encrypted_regex: ^data$",
        );
        let err = SopsFile::decrypt(&text, &fixture_ids()).unwrap_err();
        assert!(
            matches!(&err, SopsError::Unsupported(m) if m.contains("encrypted_regex")),
            "{err}"
        );
    }

    #[test]
    fn encrypted_suffix_rule_encrypts_only_matching_keys() {
        let id = age::x25519::Identity::generate();
        let mut f = SopsFile::new(&[id.to_public()]).unwrap();
        f.rule = Rule::EncryptedSuffix("_secret".into());
        f.data_mut()
            .insert("name".into(), SopsValue::string("public"));
        f.data_mut()
            .insert("db_secret".into(), SopsValue::string("private"));
        let text = f.encrypt(Utc::now()).unwrap();
        assert!(text.contains("name: public"), "{text}");
        assert!(!text.contains("private"));
        let back = SopsFile::decrypt(&text, &[id]).unwrap();
        assert_eq!(s(&back.data()["db_secret"]), "private");
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(1e-7), "0.0000001");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(go_float(f64::NAN), "NaN");
    }

    #[test]
    fn go_rfc3339_drops_fractions_and_keeps_offsets() {
        assert_eq!(
            go_rfc3339("2024-01-02T03:04:05.678Z").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            go_rfc3339("2024-01-02T03:04:05+02:00").unwrap(),
            "2024-01-02T03:04:05+02:00"
        );
    }

    #[test]
    fn atmos_text_of_each_kind() {
        let t = |v: SopsValue| v.to_atmos_text().map(|z| z.to_string());
        assert_eq!(t(SopsValue::string("x")), Some("x".into()));
        assert_eq!(t(SopsValue::Int(7)), Some("7".into()));
        assert_eq!(t(SopsValue::Float(2.5)), Some("2.5".into()));
        assert_eq!(t(SopsValue::Bool(true)), Some("true".into()));
        assert_eq!(t(SopsValue::Null), None);
        let mut m = SopsMap::new();
        m.insert("b".into(), SopsValue::Int(1));
        m.insert(
            "a".into(),
            SopsValue::List(vec![SopsValue::string("x"), SopsValue::Null]),
        );
        assert_eq!(
            t(SopsValue::Map(m)),
            Some(r#"{"b":1,"a":["x",null]}"#.into())
        );
    }

    #[test]
    fn debug_output_never_shows_values() {
        let file = SopsFile::decrypt(FIXTURE, &fixture_ids()).unwrap();
        let printed = format!("{file:?} {:?}", file.data());
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(!printed.contains("5432"), "{printed}");
        assert!(printed.contains("db"), "{printed}");
    }

    #[test]
    fn identities_parse_and_reject_garbage() {
        assert_eq!(fixture_ids().len(), 1);
        let Err(err) = parse_identities("# c\nnot-a-key\n") else {
            panic!("garbage parsed as a key")
        };
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_identities("# only a comment\n").is_err());
    }

    #[test]
    fn emitted_yaml_reads_back_identically() {
        let strings = [
            "",
            "plain",
            "2001-12-14",
            "2026-11-22T13:17:06Z",
            "3.13.1",
            "123",
            "-1",
            "true",
            "Yes",
            "null",
            "~",
            "a: b",
            "- x",
            "# not a comment",
            "two\nlines\n",
            "trailing \n",
            "quote \" and \\ backslash",
            "tab\there",
            "\u{7}bell",
            "line\u{2028}sep",
            "ünïcödé",
            "{\"json\": [1]}",
            "ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]",
            "@at",
            "`tick",
        ];
        let mut m = Mapping::new();
        for (i, s) in strings.iter().enumerate() {
            m.insert(Yaml::String(format!("k{i}")), Yaml::String((*s).to_owned()));
            m.insert(Yaml::String((*s).to_owned()), Yaml::Number(i.into()));
        }
        m.insert("f".into(), Yaml::Number(2.0.into()));
        m.insert("g".into(), Yaml::Number(1e-7.into()));
        m.insert(
            "list".into(),
            Yaml::Sequence(vec![
                Yaml::Sequence(vec![Yaml::Bool(true), Yaml::Null]),
                Yaml::Mapping(Mapping::from_iter([
                    ("a".into(), "1".into()),
                    ("b".into(), Yaml::Sequence(vec![])),
                ])),
                Yaml::Mapping(Mapping::new()),
            ]),
        );
        let mut text = String::new();
        emit::mapping(&mut text, &m, 0);
        let back: Yaml = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, Yaml::Mapping(m), "{text}");
        assert!(text.contains("k2: \"2001-12-14\""), "{text}");
        assert!(
            text.contains("list:\n    - - true\n      - null\n    - a: \"1\"\n      b: []\n"),
            "{text}"
        );
    }

    // ---- SopsStore ----

    fn loc(file: &Path, key: &str) -> Location {
        Location::SopsKey {
            file: file.to_path_buf(),
            key: key.to_owned(),
        }
    }

    fn store() -> (SopsStore, age::x25519::Identity) {
        let id = age::x25519::Identity::generate();
        (SopsStore::new(vec![id.clone()], vec![]), id)
    }

    #[tokio::test]
    async fn store_write_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/secrets.yaml");
        let (st, id) = store();
        assert!(
            st.read(&loc(&file, "a")).await.unwrap().is_none(),
            "missing file reads as unset"
        );
        assert!(!st.exists(&loc(&file, "a")).await.unwrap());

        let v1 = st
            .write(&loc(&file, "a"), &SecretValue::new("one".into()))
            .await
            .unwrap();
        st.write(&loc(&file, "b"), &SecretValue::new(r#"{"k":"v"}"#.into()))
            .await
            .unwrap();
        let got = st.read(&loc(&file, "a")).await.unwrap().unwrap();
        assert_eq!(got.value.expose(), "one");
        assert!(got.version.is_some());
        assert!(!v1.is_empty());
        assert!(st.exists(&loc(&file, "b")).await.unwrap());
        assert!(st.read(&loc(&file, "zzz")).await.unwrap().is_none());

        // On disk: encrypted for the identity's own recipient, values stored as strings.
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("one"));
        let on_disk = SopsFile::decrypt(&text, std::slice::from_ref(&id)).unwrap();
        assert_eq!(on_disk.recipients(), vec![id.to_public().to_string()]);
        assert_eq!(on_disk.data()["b"], SopsValue::string(r#"{"k":"v"}"#));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "new secrets file must not be group/world readable"
            );
        }

        st.delete(&loc(&file, "a")).await.unwrap();
        st.delete(&loc(&file, "a")).await.unwrap();
        assert!(st.read(&loc(&file, "a")).await.unwrap().is_none());
        st.delete(&loc(&file, "b")).await.unwrap();
        // The last delete leaves a valid, empty document.
        let text = std::fs::read_to_string(&file).unwrap();
        let empty = SopsFile::decrypt(&text, &[id]).unwrap();
        assert!(empty.data().is_empty());
        // Deleting from a file that does not exist creates nothing.
        let none = dir.path().join("none.yaml");
        st.delete(&loc(&none, "x")).await.unwrap();
        assert!(!none.exists());
    }

    #[tokio::test]
    async fn store_reads_scalars_and_maps_as_atmos_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, FIXTURE).unwrap();
        let st = SopsStore::new(fixture_ids(), vec![]);
        let read = |k: &str| {
            let l = loc(&file, k);
            let st = &st;
            async move {
                st.read(&l)
                    .await
                    .unwrap()
                    .map(|v| v.value.expose().to_owned())
            }
        };
        assert_eq!(read("multi").await.as_deref(), Some("line1\nline2\n"));
        assert_eq!(
            read("nested_unencrypted").await.as_deref(),
            Some(r#"{"inner":7}"#)
        );
        let db = read("db").await.unwrap();
        assert!(
            db.starts_with(r#"{"password":"s3cret","port":5432,"ratio":1.5,"enabled":true"#),
            "{db}"
        );
        let v = st.read(&loc(&file, "multi")).await.unwrap().unwrap();
        let expected = SopsFile::decrypt(FIXTURE, &fixture_ids())
            .unwrap()
            .key_version("multi");
        assert_eq!(v.version, expected);
    }

    #[tokio::test]
    async fn a_key_version_changes_with_its_own_value_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        let st = SopsStore::new(fixture_ids(), vec![]);
        let a = loc(&file, "A");
        let b = loc(&file, "B");
        let va1 = st.write(&a, &SecretValue::new("one".into())).await.unwrap();
        let vb1 = st.write(&b, &SecretValue::new("x".into())).await.unwrap();
        // Writing B leaves A's version alone (lastmodified would have changed).
        let va_after_b = st.read(&a).await.unwrap().unwrap().version.unwrap();
        assert_eq!(va1, va_after_b);
        // Writing A again with the same value keeps its version; a new value changes it.
        assert_eq!(
            st.write(&a, &SecretValue::new("one".into())).await.unwrap(),
            va1
        );
        let va2 = st.write(&a, &SecretValue::new("two".into())).await.unwrap();
        assert_ne!(va1, va2);
        assert_ne!(va1, vb1);
        // Versions do not reveal the value: a fresh process (store) sees the same id, which is a
        // keyed MAC, and no unsalted hash of the value appears in it.
        let fresh = SopsStore::new(fixture_ids(), vec![]);
        assert_eq!(fresh.read(&a).await.unwrap().unwrap().version.unwrap(), va2);
        use sha2::Digest;
        let plain = hex::encode(sha2::Sha256::digest(b"two"));
        assert!(!plain.contains(va2.trim_start_matches("k1-")));
    }

    #[tokio::test]
    async fn store_decrypts_once_and_sees_its_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, FIXTURE).unwrap();
        let st = SopsStore::new(fixture_ids(), vec![]);
        assert!(st.read(&loc(&file, "multi")).await.unwrap().is_some());
        // Served from the cache: a file that is now garbage is not decrypted again.
        std::fs::write(&file, "garbage: [").unwrap();
        assert!(st.read(&loc(&file, "multi")).await.unwrap().is_some());
        std::fs::write(&file, FIXTURE).unwrap();
        st.write(&loc(&file, "new"), &SecretValue::new("n".into()))
            .await
            .unwrap();
        let got = st.read(&loc(&file, "new")).await.unwrap().unwrap();
        assert_eq!(got.value.expose(), "n");
        // The rewrite kept the fixture's recipient (not a configured one).
        let text = std::fs::read_to_string(&file).unwrap();
        let f = SopsFile::decrypt(&text, &fixture_ids()).unwrap();
        assert_eq!(
            f.recipients(),
            SopsFile::decrypt(FIXTURE, &fixture_ids())
                .unwrap()
                .recipients()
        );
        assert_eq!(f.data().len(), 8);
    }

    #[tokio::test]
    async fn store_errors_name_the_file_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, FIXTURE).unwrap();
        let (st, _) = store();
        let err = st.read(&loc(&file, "db")).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Denied { .. }), "{msg}");
        assert!(
            msg.contains("s.yaml") && msg.contains("no age identity matches"),
            "{msg}"
        );

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "a: 1\nb: [\n").unwrap();
        let msg = st.read(&loc(&bad, "a")).await.unwrap_err().to_string();
        assert!(msg.contains("bad.yaml") && msg.contains("line"), "{msg}");

        let err = st.read(&Location::Named("x".into())).await.unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err}");
    }

    #[test]
    fn open_prefers_the_path_then_key_file_env_then_key_env() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("keys.txt");
        std::fs::write(&key_path, FIXTURE_KEY).unwrap();
        let fixture_pub = fixture_ids()[0].to_public().to_string();
        let other = age::x25519::Identity::generate();
        let other_text = other.to_string();
        let other_text = age::secrecy::ExposeSecret::expose_secret(&other_text).to_owned();
        let kp = key_path.display().to_string();

        let env = |file: Option<&str>, key: Option<&str>| {
            let (file, key) = (file.map(str::to_owned), key.map(str::to_owned));
            move |n: &str| match n {
                SOPS_AGE_KEY_FILE_ENV => file.clone(),
                SOPS_AGE_KEY_ENV => key.clone(),
                _ => None,
            }
        };
        let recipient_of = |st: &SopsStore| st.recipients[0].to_string();

        let st =
            SopsStore::open_with_env(Some(&key_path), &[], env(None, Some(&other_text))).unwrap();
        assert_eq!(recipient_of(&st), fixture_pub);
        let st = SopsStore::open_with_env(None, &[], env(Some(&kp), Some(&other_text))).unwrap();
        assert_eq!(recipient_of(&st), fixture_pub);
        let st = SopsStore::open_with_env(None, &[], env(None, Some(&other_text))).unwrap();
        assert_eq!(recipient_of(&st), other.to_public().to_string());
        let err = SopsStore::open_with_env(None, &[], env(None, None)).unwrap_err();
        assert!(err.to_string().contains(SOPS_AGE_KEY_FILE_ENV), "{err}");
        // sops' default location, last.
        let xdg = dir.path().join("xdg");
        std::fs::create_dir_all(xdg.join("sops/age")).unwrap();
        std::fs::write(xdg.join("sops/age/keys.txt"), &other_text).unwrap();
        let xdg_env = |n: &str| (n == "XDG_CONFIG_HOME").then(|| xdg.display().to_string());
        let st = SopsStore::open_with_env(None, &[], xdg_env).unwrap();
        assert_eq!(recipient_of(&st), other.to_public().to_string());

        let configured = other.to_public().to_string();
        let st = SopsStore::open_with_env(
            Some(&key_path),
            std::slice::from_ref(&configured),
            env(None, None),
        )
        .unwrap();
        assert_eq!(recipient_of(&st), configured);
        let err = SopsStore::open_with_env(Some(&key_path), &["nope".into()], env(None, None))
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
