//! cty types and values as they travel in a `DynamicValue`: msgpack (what clients send and what we
//! always reply in) and JSON (accepted on input, and used by `RawState`).
//!
//! The wire rules (null, unknown and refined unknown, number forms, dynamic values, objects that
//! must list every attribute) are those of go-cty's msgpack and JSON packages; see
//! `shared/notes/protocol.md` §4.
//!
//! - [`decode_msgpack`] / [`encode_msgpack`]: `DynamicValue.msgpack` (and what we always reply in).
//! - [`decode_json`] / [`decode_json_state`] / [`encode_json`]: `DynamicValue.json`, `RawState.json`.
//! - [`Type::to_json`] / [`Type::from_json`]: the JSON type constraint.
//! - [`decode_dynamic_value`]: whichever of the two forms a `DynamicValue` carries.
//!
//! Decoding normalizes numbers (see [`Number::normalized`]) so that equal numbers compare equal.
//! Every error carries the [`AttributePath`] of the offending value and names kinds, never
//! values: a string on the wire may be a secret.

use std::collections::BTreeMap;

use super::diag::{AttributePath, PathStep};

mod json;
mod msgpack;
mod number;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod types;

pub use json::{decode_json, decode_json_state, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};

/// A cty type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number` (arbitrary precision)
    Number,
    /// `string`
    String,
    /// `dynamic`: the concrete type travels with the value.
    Dynamic,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
}

/// What is known about an unknown value (go-cty refinements). All `None`/`false` is a plain unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unknown {
    /// The value is known not to be null.
    pub not_null: bool,
    /// A known prefix of a string value.
    pub string_prefix: Option<String>,
    /// Lower bound of a number, and whether it is inclusive.
    pub number_lower: Option<(Number, bool)>,
    /// Upper bound of a number, and whether it is inclusive.
    pub number_upper: Option<(Number, bool)>,
    /// Lower bound on a collection's length (inclusive).
    pub length_lower: Option<u64>,
    /// Upper bound on a collection's length (inclusive).
    pub length_upper: Option<u64>,
}

/// A cty number. Kept as the exact decimal text when it fits neither `i64` nor `f64` exactly.
///
/// The decoders always produce the canonical variant (see [`Number::normalized`]); the encoders
/// accept any variant and normalize it first.
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A non-integer that is exact in `f64`, or ±infinity.
    Float(f64),
    /// Any other number, as decimal text (e.g. `"123456789012345678901234567890"`, `"0.1"`).
    Decimal(String),
}

/// A cty value. Objects and maps are ordered by key, as cty orders them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Null, of whatever type the context says.
    Null,
    /// Not known until apply.
    Unknown(Unknown),
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A set (order carries no meaning).
    Set(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A map.
    Map(BTreeMap<String, Value>),
    /// An object; it always holds every attribute of its type (null where absent).
    Object(BTreeMap<String, Value>),
    /// A value of type `dynamic`, with its concrete type.
    Dynamic(Type, Box<Value>),
}

/// A wire value that does not fit the type it was decoded against.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CodecError {
    /// Where in the value the problem is.
    pub path: AttributePath,
    /// What is wrong, without quoting the value (it may be secret).
    pub message: String,
}

impl CodecError {
    /// An error at `path`.
    pub fn new(path: AttributePath, message: impl Into<String>) -> Self {
        CodecError {
            path,
            message: message.into(),
        }
    }

    /// An error at the path made of `steps` (the decoders' running path).
    fn at(steps: &[PathStep], message: impl Into<String>) -> Self {
        CodecError::new(AttributePath(steps.to_vec()), message)
    }
}

/// Decodes a `DynamicValue`: its msgpack form when present, else its JSON form.
pub fn decode_dynamic_value(msgpack: &[u8], json: &[u8], ty: &Type) -> Result<Value, CodecError> {
    if !msgpack.is_empty() {
        decode_msgpack(msgpack, ty)
    } else if !json.is_empty() {
        decode_json(json, ty)
    } else {
        Err(CodecError::new(AttributePath::root(), "empty DynamicValue"))
    }
}

impl Value {
    /// A short name of this value's kind (`null`, `string`, `object`, ...), for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown(_) => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Tuple(_) => "tuple",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Dynamic(..) => "dynamic value",
        }
    }

    /// The attribute `name` of an object value.
    pub fn attr(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(attrs) => attrs.get(name),
            _ => None,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this value is unknown (not whether it contains unknowns).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }

    /// Whether this value or anything inside it is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown(_) => true,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().any(Value::contains_unknown)
            }
            Value::Map(m) | Value::Object(m) => m.values().any(Value::contains_unknown),
            Value::Dynamic(_, v) => v.contains_unknown(),
            _ => false,
        }
    }
}

/// The error for a value whose kind does not fit its type (encoders).
fn kind_mismatch(steps: &[PathStep], ty: &Type, value: &Value) -> CodecError {
    CodecError::at(
        steps,
        format!("expected a {} value, found a {}", ty.kind(), value.kind()),
    )
}

/// Checks that an object value holds exactly the attributes of its type (encoders).
fn check_object_attributes(
    steps: &mut Vec<PathStep>,
    values: &BTreeMap<String, Value>,
    types: &BTreeMap<String, Type>,
) -> Result<(), CodecError> {
    let missing = types.keys().find(|name| !values.contains_key(*name));
    let extra = values.keys().find(|name| !types.contains_key(*name));
    let (name, message) = match (missing, extra) {
        (Some(name), _) => (
            name,
            "attribute of the object type is missing from the value",
        ),
        (None, Some(name)) => (name, "attribute is not part of the object type"),
        (None, None) => return Ok(()),
    };
    steps.push(PathStep::Attribute(name.clone()));
    Err(CodecError::at(steps, message))
}
