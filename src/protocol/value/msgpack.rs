//! The msgpack form of a `DynamicValue`, following go-cty's `cty/msgpack`.
//!
//! The bytes are first read into an [`rmpv::Value`] tree (which bounds nesting depth and never
//! preallocates from a length prefix), then checked against the type.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use super::{CodecError, Number, Type, Unknown, Value, check_object_attributes, kind_mismatch};
use crate::protocol::diag::{AttributePath, PathStep};

/// Extension type of an unknown without refinements (any type is accepted on input).
const EXT_UNKNOWN: i8 = 0;
/// Extension type of an unknown whose body is a refinement map.
const EXT_REFINED_UNKNOWN: i8 = 0x0c;
/// go-cty refuses refinement bodies larger than this.
const MAX_REFINEMENT_BODY: usize = 1024;
/// go-cty truncates string prefix refinements to this many bytes.
const MAX_STRING_PREFIX: usize = 256;
/// Depth budget for rmpv's reader; it spends two units per array or map level.
const MAX_DEPTH: usize = 512;

const KEY_NULLNESS: i64 = 1;
const KEY_STRING_PREFIX: i64 = 2;
const KEY_NUMBER_LOWER: i64 = 3;
const KEY_NUMBER_UPPER: i64 = 4;
const KEY_LENGTH_LOWER: i64 = 5;
const KEY_LENGTH_UPPER: i64 = 6;

/// Decodes `DynamicValue.msgpack` bytes as a value of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut reader = bytes;
    let tree = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH).map_err(|e| {
        CodecError::new(
            AttributePath::root(),
            format!("malformed or truncated msgpack: {e}"),
        )
    })?;
    if !reader.is_empty() {
        return Err(CodecError::new(
            AttributePath::root(),
            format!(
                "{} bytes of trailing data after the msgpack value",
                reader.len()
            ),
        ));
    }
    decode(&tree, ty, &mut Vec::new())
}

/// Encodes `value` of type `ty` as msgpack, as go-cty would (object keys sorted, numbers in their
/// most compact form, unknowns as extensions).
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let tree = encode(value, ty, &mut Vec::new())?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &tree).map_err(|e| {
        CodecError::new(AttributePath::root(), format!("cannot write msgpack: {e}"))
    })?;
    Ok(out)
}

/// A name for the kind of a msgpack item, for error messages.
fn mp_kind(v: &Mp) -> &'static str {
    match v {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) => "integer",
        Mp::F32(_) | Mp::F64(_) => "float",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(..) => "extension",
    }
}

fn expected(steps: &[PathStep], what: &str, found: &Mp) -> CodecError {
    CodecError::at(
        steps,
        format!("expected {what}, found msgpack {}", mp_kind(found)),
    )
}

fn decode(mp: &Mp, ty: &Type, steps: &mut Vec<PathStep>) -> Result<Value, CodecError> {
    if let Mp::Ext(code, body) = mp {
        return decode_unknown(*code, body, ty, steps);
    }
    if *ty == Type::Dynamic {
        return decode_dynamic(mp, steps);
    }
    if mp.is_nil() {
        return Ok(Value::Null);
    }
    match ty {
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(expected(steps, "a bool", mp)),
        },
        Type::Number => decode_number(mp, steps).map(Value::Number),
        Type::String => match mp {
            Mp::String(s) => s
                .as_str()
                .map(|s| Value::String(s.to_owned()))
                .ok_or_else(|| CodecError::at(steps, "string is not valid UTF-8")),
            _ => Err(expected(steps, "a string", mp)),
        },
        Type::List(ety) | Type::Set(ety) => {
            let Mp::Array(items) = mp else {
                return Err(expected(steps, &format!("a {}", ty.kind()), mp));
            };
            let elems = decode_elements(items, |_| ety, steps)?;
            Ok(match ty {
                Type::List(_) => Value::List(elems),
                _ => Value::Set(elems),
            })
        }
        Type::Tuple(etys) => {
            let Mp::Array(items) = mp else {
                return Err(expected(steps, "a tuple", mp));
            };
            if items.len() != etys.len() {
                return Err(CodecError::at(
                    steps,
                    format!(
                        "expected a tuple of {} elements, found {}",
                        etys.len(),
                        items.len()
                    ),
                ));
            }
            decode_elements(items, |i| &etys[i], steps).map(Value::Tuple)
        }
        Type::Map(ety) => {
            let Mp::Map(pairs) = mp else {
                return Err(expected(steps, "a map", mp));
            };
            let mut out = BTreeMap::new();
            for (key, item) in pairs {
                let key = map_key(key, "map key", steps)?;
                steps.push(PathStep::Key(key.to_owned()));
                let value = decode(item, ety, steps)?;
                if out.insert(key.to_owned(), value).is_some() {
                    return Err(CodecError::at(steps, "duplicate map key"));
                }
                steps.pop();
            }
            Ok(Value::Map(out))
        }
        Type::Object(atys) => {
            let Mp::Map(pairs) = mp else {
                return Err(expected(steps, "an object", mp));
            };
            let mut out = BTreeMap::new();
            for (key, item) in pairs {
                let name = map_key(key, "attribute name", steps)?;
                steps.push(PathStep::Attribute(name.to_owned()));
                let Some(aty) = atys.get(name) else {
                    return Err(CodecError::at(steps, "unsupported attribute"));
                };
                let value = decode(item, aty, steps)?;
                if out.insert(name.to_owned(), value).is_some() {
                    return Err(CodecError::at(steps, "duplicate attribute"));
                }
                steps.pop();
            }
            if let Some(name) = atys.keys().find(|name| !out.contains_key(*name)) {
                steps.push(PathStep::Attribute(name.clone()));
                return Err(CodecError::at(steps, "required attribute is missing"));
            }
            Ok(Value::Object(out))
        }
        Type::Dynamic => decode_dynamic(mp, steps),
    }
}

fn decode_elements<'t>(
    items: &[Mp],
    ety: impl Fn(usize) -> &'t Type,
    steps: &mut Vec<PathStep>,
) -> Result<Vec<Value>, CodecError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        steps.push(PathStep::Index(i as i64));
        out.push(decode(item, ety(i), steps)?);
        steps.pop();
    }
    Ok(out)
}

fn map_key<'a>(key: &'a Mp, what: &str, steps: &[PathStep]) -> Result<&'a str, CodecError> {
    match key {
        Mp::String(s) => s
            .as_str()
            .ok_or_else(|| CodecError::at(steps, format!("{what} is not valid UTF-8"))),
        _ => Err(expected(steps, &format!("a string {what}"), key)),
    }
}

fn decode_number(mp: &Mp, steps: &[PathStep]) -> Result<Number, CodecError> {
    let number = match mp {
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Some(Number::Int(i)),
            (None, Some(u)) => Some(Number::Decimal(u.to_string())),
            (None, None) => None,
        },
        Mp::F32(f) => Number::from_f64(f64::from(*f)),
        Mp::F64(f) => Number::from_f64(*f),
        Mp::String(s) => match s.as_str() {
            Some(text) => Number::parse(text),
            None => None,
        },
        _ => return Err(expected(steps, "a number", mp)),
    };
    number.ok_or_else(|| {
        CodecError::at(
            steps,
            format!(
                "expected a number, found a msgpack {} that is not one",
                mp_kind(mp)
            ),
        )
    })
}

/// Decodes `[type JSON, value]`, nil (a dynamic null), or a bare unknown (handled by the caller).
fn decode_dynamic(mp: &Mp, steps: &mut Vec<PathStep>) -> Result<Value, CodecError> {
    let pair = match mp {
        Mp::Nil => return Ok(Value::Null),
        Mp::Array(pair) if pair.len() == 2 => pair,
        _ => {
            return Err(expected(
                steps,
                "a [type, value] pair for a dynamic value",
                mp,
            ));
        }
    };
    let type_json = match &pair[0] {
        Mp::Binary(b) => b.as_slice(),
        Mp::String(s) => s.as_bytes(),
        other => {
            return Err(expected(
                steps,
                "the type of a dynamic value as bytes",
                other,
            ));
        }
    };
    let ty = Type::from_json(type_json).map_err(|e| CodecError::at(steps, e.message))?;
    let value = decode(&pair[1], &ty, steps)?;
    Ok(match ty {
        // A dynamic type inside a dynamic value adds nothing; keep the inner value.
        Type::Dynamic => value,
        ty => Value::Dynamic(ty, Box::new(value)),
    })
}

fn decode_unknown(
    code: i8,
    body: &[u8],
    ty: &Type,
    steps: &[PathStep],
) -> Result<Value, CodecError> {
    if body.len() <= 1 {
        return Ok(Value::Unknown(Unknown::default()));
    }
    if code != EXT_REFINED_UNKNOWN {
        return Err(CodecError::at(
            steps,
            format!(
                "unsupported msgpack extension type {code} with a {}-byte body",
                body.len()
            ),
        ));
    }
    if body.len() > MAX_REFINEMENT_BODY {
        return Err(CodecError::at(steps, "oversize unknown value refinement"));
    }
    let bad =
        |what: &str| CodecError::at(steps, format!("invalid unknown value refinement: {what}"));
    // Trailing bytes after the map are ignored, as go-cty reserves them for later use.
    let mut reader = body;
    let Ok(Mp::Map(entries)) = rmpv::decode::read_value_with_max_depth(&mut reader, 16) else {
        return Err(bad("body is not a msgpack map"));
    };
    if *ty == Type::Dynamic {
        // Refinements never apply to a wholly unknown dynamic value.
        return Ok(Value::Unknown(Unknown::default()));
    }
    let mut unknown = Unknown::default();
    let mut definitely_null = false;
    for (key, value) in &entries {
        let Some(key) = key.as_i64() else {
            return Err(bad("non-integer key"));
        };
        match key {
            KEY_NULLNESS => match value {
                Mp::Boolean(is_null) => {
                    definitely_null = *is_null;
                    unknown.not_null = !is_null;
                }
                _ => return Err(bad("nullness is not a bool")),
            },
            KEY_STRING_PREFIX => {
                if *ty != Type::String {
                    return Err(bad("string prefix on a non-string type"));
                }
                let prefix = match value {
                    Mp::String(s) => s.as_str(),
                    _ => None,
                };
                let prefix = prefix.ok_or_else(|| bad("string prefix is not a UTF-8 string"))?;
                unknown.string_prefix = Some(prefix.to_owned());
            }
            KEY_NUMBER_LOWER | KEY_NUMBER_UPPER => {
                if *ty != Type::Number {
                    return Err(bad("number bound on a non-number type"));
                }
                let bound = match value {
                    Mp::Array(pair) if pair.len() == 2 => {
                        match (decode_number(&pair[0], steps), &pair[1]) {
                            (Ok(n), Mp::Boolean(inclusive)) => Some((n, *inclusive)),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let bound =
                    bound.ok_or_else(|| bad("number bound is not a [number, bool] pair"))?;
                if key == KEY_NUMBER_LOWER {
                    unknown.number_lower = Some(bound);
                } else {
                    unknown.number_upper = Some(bound);
                }
            }
            KEY_LENGTH_LOWER | KEY_LENGTH_UPPER => {
                if !matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) {
                    return Err(bad("length bound on a non-collection type"));
                }
                let bound = value
                    .as_u64()
                    .ok_or_else(|| bad("length bound is not a non-negative integer"))?;
                if key == KEY_LENGTH_LOWER {
                    unknown.length_lower = Some(bound);
                } else {
                    unknown.length_upper = Some(bound);
                }
            }
            // Unknown keys are future refinements; go-cty ignores them too.
            _ => {}
        }
    }
    if definitely_null {
        // "Unknown but certainly null" is simply null.
        return Ok(Value::Null);
    }
    Ok(Value::Unknown(unknown))
}

fn encode(value: &Value, ty: &Type, steps: &mut Vec<PathStep>) -> Result<Mp, CodecError> {
    if *ty == Type::Dynamic {
        return match value {
            Value::Null => Ok(Mp::Nil),
            Value::Unknown(_) => Ok(plain_unknown()),
            Value::Dynamic(Type::Dynamic, _) => Err(CodecError::at(
                steps,
                "a dynamic value must carry a concrete type, not dynamic",
            )),
            Value::Dynamic(concrete, inner) => Ok(Mp::Array(vec![
                Mp::Binary(concrete.to_json()),
                encode(inner, concrete, steps)?,
            ])),
            other => Err(CodecError::at(
                steps,
                format!(
                    "expected a dynamic value with its type, found a {}",
                    other.kind()
                ),
            )),
        };
    }
    match (ty, value) {
        (_, Value::Null) => Ok(Mp::Nil),
        (_, Value::Unknown(unknown)) => encode_unknown(unknown, ty, steps),
        (Type::Bool, Value::Bool(b)) => Ok(Mp::Boolean(*b)),
        (Type::Number, Value::Number(n)) => encode_number(n, steps),
        (Type::String, Value::String(s)) => Ok(Mp::String(s.as_str().into())),
        (Type::List(ety), Value::List(items)) | (Type::Set(ety), Value::Set(items)) => {
            encode_elements(items, |_| ety, steps)
        }
        (Type::Tuple(etys), Value::Tuple(items)) => {
            if items.len() != etys.len() {
                return Err(CodecError::at(
                    steps,
                    format!(
                        "expected a tuple of {} elements, found {}",
                        etys.len(),
                        items.len()
                    ),
                ));
            }
            encode_elements(items, |i| &etys[i], steps)
        }
        (Type::Map(ety), Value::Map(entries)) => {
            let mut pairs = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                steps.push(PathStep::Key(key.clone()));
                pairs.push((Mp::String(key.as_str().into()), encode(item, ety, steps)?));
                steps.pop();
            }
            Ok(Mp::Map(pairs))
        }
        (Type::Object(atys), Value::Object(attrs)) => {
            check_object_attributes(steps, attrs, atys)?;
            let mut pairs = Vec::with_capacity(atys.len());
            // BTreeMap order is go-cty's sorted attribute order.
            for ((name, aty), item) in atys.iter().zip(attrs.values()) {
                steps.push(PathStep::Attribute(name.clone()));
                pairs.push((Mp::String(name.as_str().into()), encode(item, aty, steps)?));
                steps.pop();
            }
            Ok(Mp::Map(pairs))
        }
        _ => Err(kind_mismatch(steps, ty, value)),
    }
}

fn encode_elements<'t>(
    items: &[Value],
    ety: impl Fn(usize) -> &'t Type,
    steps: &mut Vec<PathStep>,
) -> Result<Mp, CodecError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        steps.push(PathStep::Index(i as i64));
        out.push(encode(item, ety(i), steps)?);
        steps.pop();
    }
    Ok(Mp::Array(out))
}

fn encode_number(n: &Number, steps: &[PathStep]) -> Result<Mp, CodecError> {
    match n.normalized() {
        Some(Number::Int(i)) => Ok(Mp::from(i)),
        Some(Number::Float(f)) => Ok(Mp::F64(f)),
        Some(Number::Decimal(text)) => Ok(Mp::String(text.into())),
        None => Err(CodecError::at(
            steps,
            "number is NaN or its decimal text is not a number",
        )),
    }
}

fn plain_unknown() -> Mp {
    // fixext1 `d4 00 00`: the most compact extension, as go-cty writes it.
    Mp::Ext(EXT_UNKNOWN, vec![0])
}

fn encode_unknown(unknown: &Unknown, ty: &Type, steps: &[PathStep]) -> Result<Mp, CodecError> {
    let not_applicable = |what: &str| {
        CodecError::at(
            steps,
            format!(
                "a {what} refinement does not apply to a {} value",
                ty.kind()
            ),
        )
    };
    let mut entries = Vec::new();
    if unknown.not_null {
        entries.push((Mp::from(KEY_NULLNESS), Mp::Boolean(false)));
    }
    if let Some(prefix) = &unknown.string_prefix {
        if *ty != Type::String {
            return Err(not_applicable("string prefix"));
        }
        if !prefix.is_empty() {
            entries.push((
                Mp::from(KEY_STRING_PREFIX),
                Mp::String(truncate_utf8(prefix, MAX_STRING_PREFIX).into()),
            ));
        }
    }
    for (key, bound) in [
        (KEY_NUMBER_LOWER, &unknown.number_lower),
        (KEY_NUMBER_UPPER, &unknown.number_upper),
    ] {
        if let Some((n, inclusive)) = bound {
            if *ty != Type::Number {
                return Err(not_applicable("number bound"));
            }
            let pair = vec![encode_number(n, steps)?, Mp::Boolean(*inclusive)];
            entries.push((Mp::from(key), Mp::Array(pair)));
        }
    }
    for (key, bound) in [
        (KEY_LENGTH_LOWER, unknown.length_lower),
        (KEY_LENGTH_UPPER, unknown.length_upper),
    ] {
        if let Some(n) = bound {
            if !matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) {
                return Err(not_applicable("length bound"));
            }
            entries.push((Mp::from(key), Mp::from(n)));
        }
    }
    if *ty == Type::Dynamic || entries.is_empty() {
        return Ok(plain_unknown());
    }
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &Mp::Map(entries)).map_err(|e| {
        CodecError::at(
            steps,
            format!("cannot write unknown value refinements: {e}"),
        )
    })?;
    Ok(Mp::Ext(EXT_REFINED_UNKNOWN, body))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(attrs: &[(&str, Type)]) -> Type {
        Type::Object(
            attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn obj_val(attrs: &[(&str, Value)]) -> Value {
        Value::Object(
            attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }

    fn err_at(bytes: &[u8], ty: &Type) -> (String, String) {
        let e = decode_msgpack(bytes, ty).unwrap_err();
        (e.path.to_string(), e.message)
    }

    #[test]
    fn null_is_nil_at_any_type() {
        for ty in [
            Type::Bool,
            Type::Number,
            Type::String,
            Type::Dynamic,
            list(Type::String),
            obj(&[("a", Type::String)]),
            Type::Tuple(vec![Type::Bool]),
        ] {
            assert_eq!(encode_msgpack(&Value::Null, &ty).unwrap(), [0xc0], "{ty}");
            assert_eq!(decode_msgpack(&[0xc0], &ty).unwrap(), Value::Null, "{ty}");
        }
    }

    #[test]
    fn plain_unknown_is_fixext1_type_0() {
        let unknown = Value::Unknown(Unknown::default());
        for ty in [Type::String, Type::Dynamic, list(Type::Number)] {
            assert_eq!(encode_msgpack(&unknown, &ty).unwrap(), [0xd4, 0, 0]);
            assert_eq!(decode_msgpack(&[0xd4, 0, 0], &ty).unwrap(), unknown);
        }
    }

    #[test]
    fn any_extension_with_a_short_body_is_a_plain_unknown() {
        let unknown = Value::Unknown(Unknown::default());
        // fixext1 of type 5; ext8 of type 12 with an empty body; fixext1 of type -1.
        for bytes in [&[0xd4, 5, 7][..], &[0xc7, 0, 12], &[0xd4, 0xff, 0]] {
            assert_eq!(decode_msgpack(bytes, &Type::Bool).unwrap(), unknown);
        }
    }

    #[test]
    fn refined_unknown_decodes_from_hand_built_bytes() {
        // ext8, 11 bytes, type 12: {1: false, 2: "ab", 99: [nil], 5: 1}
        let body = [
            0x84, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b', 0x63, 0x91, 0xc0, 0x05, 0x01,
        ];
        let mut bytes = vec![0xc7, body.len() as u8, 0x0c];
        bytes.extend_from_slice(&body);
        // The string prefix on a list type is refused, as go-cty does.
        let (path, message) = err_at(&bytes, &list(Type::String));
        assert_eq!(path, "(root)");
        assert!(message.contains("string prefix"), "{message}");

        // Without the length key, and at type string: key 99 is ignored.
        let body = [0x83, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b', 0x63, 0x91, 0xc0];
        let mut bytes = vec![0xc7, body.len() as u8, 0x0c];
        bytes.extend_from_slice(&body);
        let expected = Value::Unknown(Unknown {
            not_null: true,
            string_prefix: Some("ab".to_owned()),
            ..Unknown::default()
        });
        assert_eq!(decode_msgpack(&bytes, &Type::String).unwrap(), expected);
        assert_eq!(encode_msgpack(&expected, &Type::String).unwrap(), {
            // go-cty's layout: nullness first, then the prefix.
            let body = [0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b'];
            let mut b = vec![0xc7, body.len() as u8, 0x0c];
            b.extend_from_slice(&body);
            b
        });
        // Refinements of a dynamic unknown are ignored.
        assert_eq!(
            decode_msgpack(&bytes, &Type::Dynamic).unwrap(),
            Value::Unknown(Unknown::default())
        );
    }

    #[test]
    fn number_and_length_refinements() {
        // {3: [0, true], 4: ["1e30", false]} at type number
        let body = [
            0x82, 0x03, 0x92, 0x00, 0xc3, 0x04, 0x92, 0xa4, b'1', b'e', b'3', b'0', 0xc2,
        ];
        let mut bytes = vec![0xc7, body.len() as u8, 0x0c];
        bytes.extend_from_slice(&body);
        let expected = Value::Unknown(Unknown {
            number_lower: Some((Number::Int(0), true)),
            number_upper: Some((
                Number::Decimal("1000000000000000000000000000000".to_owned()),
                false,
            )),
            ..Unknown::default()
        });
        assert_eq!(decode_msgpack(&bytes, &Type::Number).unwrap(), expected);

        // {5: 2, 6: 300} at type set(string)
        let bytes = [0xc7, 7, 0x0c, 0x82, 0x05, 0x02, 0x06, 0xcd, 0x01, 0x2c];
        let ty = Type::Set(Box::new(Type::String));
        let expected = Value::Unknown(Unknown {
            length_lower: Some(2),
            length_upper: Some(300),
            ..Unknown::default()
        });
        assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), expected);
        assert_eq!(encode_msgpack(&expected, &ty).unwrap(), bytes);
    }

    #[test]
    fn refinement_edge_cases() {
        // {1: true}: unknown but certainly null is null.
        assert_eq!(
            decode_msgpack(&[0xc7, 3, 0x0c, 0x81, 0x01, 0xc3], &Type::Bool).unwrap(),
            Value::Null
        );
        // A long body with another extension type, and a body that is not a map.
        assert!(decode_msgpack(&[0xd5, 0x05, 0x81, 0x01], &Type::Bool).is_err());
        assert!(decode_msgpack(&[0xd5, 0x0c, 0x92, 0xc0], &Type::Bool).is_err());
        // Refinements that do not apply to the type cannot be encoded.
        let prefix = Value::Unknown(Unknown {
            string_prefix: Some("x".to_owned()),
            ..Unknown::default()
        });
        assert!(encode_msgpack(&prefix, &Type::Number).is_err());
        // ...but a dynamic unknown drops them.
        assert_eq!(
            encode_msgpack(&prefix, &Type::Dynamic).unwrap(),
            [0xd4, 0, 0]
        );
        // Long prefixes are cut at 256 bytes on a character boundary.
        let long = Value::Unknown(Unknown {
            string_prefix: Some("é".repeat(200)),
            ..Unknown::default()
        });
        let back = decode_msgpack(
            &encode_msgpack(&long, &Type::String).unwrap(),
            &Type::String,
        );
        assert_eq!(
            back.unwrap(),
            Value::Unknown(Unknown {
                string_prefix: Some("é".repeat(128)),
                ..Unknown::default()
            })
        );
    }

    #[test]
    fn numbers_decode_from_every_width_and_normalize() {
        let cases: &[(&[u8], Number)] = &[
            (&[0x05], Number::Int(5)),
            (&[0xff], Number::Int(-1)),
            (&[0xcc, 0xff], Number::Int(255)),
            (&[0xcd, 0x01, 0x00], Number::Int(256)),
            (&[0xce, 0, 1, 0, 0], Number::Int(65536)),
            (&[0xcf, 0, 0, 0, 1, 0, 0, 0, 0], Number::Int(1 << 32)),
            (&[0xd0, 0x80], Number::Int(-128)),
            (&[0xd1, 0x80, 0x00], Number::Int(-32768)),
            (&[0xd2, 0xff, 0xff, 0xff, 0xfe], Number::Int(-2)),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], Number::Int(i64::MIN)),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Number::Decimal("18446744073709551615".to_owned()),
            ),
            (&[0xca, 0x3f, 0xc0, 0, 0], Number::Float(1.5)),
            (&[0xca, 0x40, 0x40, 0, 0], Number::Int(3)),
            (&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], Number::Float(1.5)),
            (&[0xcb, 0x40, 0x45, 0, 0, 0, 0, 0, 0], Number::Int(42)),
            (
                &[0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
                Number::Float(f64::INFINITY),
            ),
            (&[0xa2, b'4', b'2'], Number::Int(42)),
            (&[0xa3, b'0', b'.', b'5'], Number::Float(0.5)),
            (&[0xa3, b'0', b'.', b'1'], Number::Decimal("0.1".to_owned())),
            (
                b"\xb419223372036854775808",
                Number::Decimal("19223372036854775808".to_owned()),
            ),
        ];
        for (bytes, number) in cases {
            let got = decode_msgpack(bytes, &Type::Number).unwrap();
            assert_eq!(got, Value::Number(number.clone()), "{bytes:02x?}");
        }
        for bad in [
            &b"\xa3abc"[..],
            &[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1],
            &[0xc3],
        ] {
            let (_, message) = err_at(bad, &Type::Number);
            assert!(message.starts_with("expected a number"), "{message}");
            assert!(!message.contains("abc"));
        }
    }

    #[test]
    fn numbers_encode_in_the_smallest_form() {
        let cases: &[(Number, &[u8])] = &[
            (Number::Int(1), &[0x01]),
            (Number::Int(-32), &[0xe0]),
            (Number::Int(200), &[0xcc, 200]),
            (Number::Int(-200), &[0xd1, 0xff, 0x38]),
            (
                Number::Int(i64::MAX),
                &[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (Number::Float(0.5), &[0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]),
            (Number::Float(2.0), &[0x02]),
            (
                Number::Decimal("0.10".to_owned()),
                &[0xa3, b'0', b'.', b'1'],
            ),
            (Number::Decimal("7".to_owned()), &[0x07]),
        ];
        for (number, bytes) in cases {
            let got = encode_msgpack(&Value::Number(number.clone()), &Type::Number).unwrap();
            assert_eq!(got, *bytes, "{number:?}");
        }
        assert!(encode_msgpack(&Value::Number(Number::Float(f64::NAN)), &Type::Number).is_err());
        assert!(
            encode_msgpack(&Value::Number(Number::Decimal("x".into())), &Type::Number).is_err()
        );
    }

    #[test]
    fn objects_need_exactly_their_attributes() {
        let ty = obj(&[
            ("a", Type::String),
            ("nested", list(obj(&[("x", Type::Bool), ("y", Type::Bool)]))),
        ]);
        // {"nested": [{"x": true}], "a": "v"}: y is missing in nested[0].
        let bytes = b"\x82\xa6nested\x91\x81\xa1x\xc3\xa1a\xa1v";
        assert_eq!(err_at(bytes, &ty).0, "nested[0].y");
        assert!(err_at(bytes, &ty).1.contains("missing"));
        // An extra attribute.
        let bytes = b"\x83\xa1a\xa1v\xa6nested\xc0\xa1z\xc0";
        assert_eq!(
            err_at(bytes, &ty),
            ("z".into(), "unsupported attribute".into())
        );
        // An empty map for a non-empty object type.
        assert_eq!(err_at(&[0x80], &ty).0, "a");
        // Keys in any order decode; encoding sorts them.
        let bytes = b"\x82\xa6nested\xc0\xa1a\xa1v";
        let value = obj_val(&[("a", s("v")), ("nested", Value::Null)]);
        assert_eq!(decode_msgpack(bytes, &ty).unwrap(), value);
        assert_eq!(
            encode_msgpack(&value, &ty).unwrap(),
            b"\x82\xa1a\xa1v\xa6nested\xc0"
        );
        // Encoding checks the attributes too.
        let short = obj_val(&[("a", s("v"))]);
        let e = encode_msgpack(&short, &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "nested");
    }

    #[test]
    fn errors_name_kinds_and_paths_but_never_values() {
        let ty = Type::Map(Box::new(list(Type::Number)));
        let bytes = b"\x81\xa3key\x92\x01\xa6secret";
        let e = decode_msgpack(bytes, &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "[\"key\"][1]");
        assert!(!e.to_string().contains("secret"), "{e}");

        let e = decode_msgpack(b"\xa6secret", &Type::Bool).unwrap_err();
        assert_eq!(e.message, "expected a bool, found msgpack string");

        let e = encode_msgpack(&s("secret"), &Type::Number).unwrap_err();
        assert_eq!(e.message, "expected a number value, found a string");

        let e = decode_msgpack(&[0x81, 0x01, 0x02], &Type::Map(Box::new(Type::Number)));
        assert!(e.unwrap_err().message.contains("string map key"));
    }

    #[test]
    fn collections_and_tuples() {
        let ty = Type::Tuple(vec![Type::String, Type::Number]);
        let value = Value::Tuple(vec![s("a"), int(1)]);
        assert_eq!(encode_msgpack(&value, &ty).unwrap(), b"\x92\xa1a\x01");
        assert_eq!(decode_msgpack(b"\x92\xa1a\x01", &ty).unwrap(), value);
        assert!(decode_msgpack(b"\x91\xa1a", &ty).is_err());
        assert!(decode_msgpack(b"\x90", &ty).is_err());
        assert!(encode_msgpack(&Value::Tuple(vec![s("a")]), &ty).is_err());

        let ty = Type::Map(Box::new(Type::Bool));
        let value = Value::Map([("b".to_owned(), Value::Bool(true))].into());
        assert_eq!(encode_msgpack(&value, &ty).unwrap(), b"\x81\xa1b\xc3");
        assert!(decode_msgpack(b"\x82\xa1b\xc3\xa1b\xc2", &ty).is_err());

        let ty = list(Type::String);
        assert_eq!(decode_msgpack(&[0x90], &ty).unwrap(), Value::List(vec![]));
        assert!(encode_msgpack(&Value::Set(vec![]), &ty).is_err());
    }

    #[test]
    fn dynamic_values_travel_with_their_type() {
        let value = Value::Dynamic(list(Type::String), Box::new(Value::List(vec![s("x")])));
        let bytes = b"\x92\xc4\x11[\"list\",\"string\"]\x91\xa1x";
        assert_eq!(encode_msgpack(&value, &Type::Dynamic).unwrap(), bytes);
        assert_eq!(decode_msgpack(bytes, &Type::Dynamic).unwrap(), value);
        // The type may also arrive as str.
        let bytes = b"\x92\xa8\"string\"\xa1x";
        assert_eq!(
            decode_msgpack(bytes, &Type::Dynamic).unwrap(),
            Value::Dynamic(Type::String, Box::new(s("x")))
        );
        // A typed null is a pair; a dynamic null is nil.
        let typed_null = Value::Dynamic(Type::Bool, Box::new(Value::Null));
        let bytes = encode_msgpack(&typed_null, &Type::Dynamic).unwrap();
        assert_eq!(bytes, b"\x92\xc4\x06\"bool\"\xc0");
        assert_eq!(decode_msgpack(&bytes, &Type::Dynamic).unwrap(), typed_null);
        // A known value in a dynamic position must say its type.
        assert!(encode_msgpack(&s("x"), &Type::Dynamic).is_err());
        assert!(encode_msgpack(&value, &list(Type::String)).is_err());
        // Malformed pairs.
        assert!(decode_msgpack(b"\x91\xc0", &Type::Dynamic).is_err());
        assert!(decode_msgpack(b"\x92\x01\xc0", &Type::Dynamic).is_err());
        assert!(decode_msgpack(b"\x92\xa3bad\xc0", &Type::Dynamic).is_err());
        // Inside an object, the error carries the attribute.
        let ty = obj(&[("d", Type::Dynamic)]);
        let e = decode_msgpack(b"\x81\xa1d\x92\xa8\"number\"\xa1x", &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "d");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let ty = list(Type::String);
        // A 32-bit array header claiming 4 billion elements, then nothing.
        assert!(decode_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff], &ty).is_err());
        // Huge bin/str/ext/map headers with no body.
        for bytes in [
            &[0xc6, 0xff, 0xff, 0xff, 0xff][..],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x0c],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(
                decode_msgpack(bytes, &Type::Dynamic).is_err(),
                "{bytes:02x?}"
            );
        }
        // Deep nesting stops at the depth limit instead of overflowing the stack...
        let deep = vec![0x91; 100_000];
        assert!(decode_msgpack(&deep, &Type::Dynamic).is_err());
        // ...while a merely deep value still decodes.
        let mut ty = Type::String;
        let mut bytes = vec![0x91; 200];
        bytes.push(0xc0);
        for _ in 0..200 {
            ty = list(ty);
        }
        assert!(decode_msgpack(&bytes, &ty).is_ok());
        // Empty input, a reserved marker, trailing data.
        assert!(decode_msgpack(&[], &Type::Bool).is_err());
        // rmpv reads the reserved marker 0xc1 as nil (go's reader refuses it); harmless.
        assert_eq!(decode_msgpack(&[0xc1], &Type::Bool).unwrap(), Value::Null);
        assert!(decode_msgpack(&[0xc3, 0xc3], &Type::Bool).is_err());
        // Invalid UTF-8 in a string.
        assert!(decode_msgpack(&[0xa1, 0xff], &Type::String).is_err());
    }
}
