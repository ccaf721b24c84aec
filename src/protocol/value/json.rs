//! The JSON form of a value (`DynamicValue.json`, `RawState.json`), following go-cty's
//! `cty/json`: lenient where go-cty is (absent object attributes are null; a bool or number may
//! arrive as a string, and a string as a number or bool), and unable to hold unknowns.
//!
//! Numbers keep their exact text: the input is split with serde_json's [`RawValue`], one level at
//! a time, so a number never passes through `f64` unless it is exact there.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::types::push_json_string;
use super::{CodecError, Number, Type, Value, check_object_attributes, kind_mismatch};
use crate::protocol::diag::{AttributePath, PathStep};

/// Decodes `DynamicValue.json` as a value of type `ty`. Object attributes absent from the JSON
/// are null; attributes the type does not have are an error.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    decode_top(bytes, ty, Leniency::Strict)
}

/// Decodes `RawState.json`, which follows an older schema version: like [`decode_json`], but
/// object attributes the type does not have are dropped instead of refused.
pub fn decode_json_state(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    decode_top(bytes, ty, Leniency::DropUnknownAttributes)
}

/// Encodes `value` of type `ty` as compact JSON, as go-cty would. Unknown values and infinities
/// have no JSON form and are an error.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::new();
    encode(value, ty, &mut Vec::new(), &mut out)?;
    Ok(out.into_bytes())
}

#[derive(Clone, Copy, PartialEq)]
enum Leniency {
    Strict,
    DropUnknownAttributes,
}

/// One level of parsed JSON; containers hold their children unparsed.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(String),
    Array(Vec<&'a RawValue>),
    Object(BTreeMap<String, &'a RawValue>),
}

impl Node<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "bool",
            Node::Number(_) => "number",
            Node::String(_) => "string",
            Node::Array(_) => "array",
            Node::Object(_) => "object",
        }
    }
}

fn syntax_error(steps: &[PathStep], e: &serde_json::Error) -> CodecError {
    // serde_json's own message may quote input, so only its position is kept.
    CodecError::at(
        steps,
        format!("malformed JSON at line {}, column {}", e.line(), e.column()),
    )
}

fn expected(steps: &[PathStep], what: &str, found: &Node) -> CodecError {
    CodecError::at(
        steps,
        format!("expected {what}, found JSON {}", found.kind()),
    )
}

fn decode_top(bytes: &[u8], ty: &Type, leniency: Leniency) -> Result<Value, CodecError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CodecError::new(AttributePath::root(), "JSON is not valid UTF-8"))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| syntax_error(&[], &e))?;
    decode(raw, ty, &mut Vec::new(), leniency)
}

fn parse<'a>(raw: &'a RawValue, steps: &[PathStep]) -> Result<Node<'a>, CodecError> {
    let text = raw.get().trim();
    let node = match text.as_bytes().first() {
        Some(b'n') => Node::Null,
        Some(b't') => Node::Bool(true),
        Some(b'f') => Node::Bool(false),
        Some(b'"') => {
            Node::String(serde_json::from_str(text).map_err(|e| syntax_error(steps, &e))?)
        }
        Some(b'[') => Node::Array(serde_json::from_str(text).map_err(|e| syntax_error(steps, &e))?),
        Some(b'{') => {
            Node::Object(serde_json::from_str(text).map_err(|e| syntax_error(steps, &e))?)
        }
        _ => Node::Number(text),
    };
    Ok(node)
}

fn decode(
    raw: &RawValue,
    ty: &Type,
    steps: &mut Vec<PathStep>,
    leniency: Leniency,
) -> Result<Value, CodecError> {
    let node = parse(raw, steps)?;
    if let Node::Null = node {
        return Ok(Value::Null);
    }
    match ty {
        Type::Dynamic => decode_dynamic(node, steps, leniency),
        Type::Bool => match node {
            Node::Bool(b) => Ok(Value::Bool(b)),
            Node::String(s) if s == "true" => Ok(Value::Bool(true)),
            Node::String(s) if s == "false" => Ok(Value::Bool(false)),
            other => Err(expected(steps, "a bool", &other)),
        },
        Type::Number => {
            let number = match &node {
                Node::Number(text) => Number::parse(text),
                Node::String(text) => Number::parse(text),
                other => return Err(expected(steps, "a number", other)),
            };
            number.map(Value::Number).ok_or_else(|| {
                CodecError::at(
                    steps,
                    format!(
                        "expected a number, found a JSON {} that is not one",
                        node.kind()
                    ),
                )
            })
        }
        Type::String => match node {
            Node::String(s) => Ok(Value::String(s)),
            Node::Number(text) => Ok(Value::String(text.to_owned())),
            Node::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(expected(steps, "a string", &other)),
        },
        Type::List(ety) | Type::Set(ety) => {
            let Node::Array(items) = node else {
                return Err(expected(
                    steps,
                    &format!("an array for a {}", ty.kind()),
                    &node,
                ));
            };
            let elems = decode_elements(&items, |_| ety, steps, leniency)?;
            Ok(match ty {
                Type::List(_) => Value::List(elems),
                _ => Value::Set(elems),
            })
        }
        Type::Tuple(etys) => {
            let Node::Array(items) = node else {
                return Err(expected(steps, "an array for a tuple", &node));
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
            decode_elements(&items, |i| &etys[i], steps, leniency).map(Value::Tuple)
        }
        Type::Map(ety) => {
            let Node::Object(entries) = node else {
                return Err(expected(steps, "an object for a map", &node));
            };
            let mut out = BTreeMap::new();
            for (key, item) in entries {
                steps.push(PathStep::Key(key));
                let value = decode(item, ety, steps, leniency)?;
                if let Some(PathStep::Key(key)) = steps.pop() {
                    out.insert(key, value);
                }
            }
            Ok(Value::Map(out))
        }
        Type::Object(atys) => {
            let Node::Object(entries) = node else {
                return Err(expected(steps, "an object", &node));
            };
            let mut out = BTreeMap::new();
            for (name, item) in entries {
                match atys.get(&name) {
                    Some(aty) => {
                        steps.push(PathStep::Attribute(name));
                        let value = decode(item, aty, steps, leniency)?;
                        if let Some(PathStep::Attribute(name)) = steps.pop() {
                            out.insert(name, value);
                        }
                    }
                    None if leniency == Leniency::DropUnknownAttributes => {}
                    None => {
                        steps.push(PathStep::Attribute(name));
                        return Err(CodecError::at(steps, "unsupported attribute"));
                    }
                }
            }
            for name in atys.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
    }
}

fn decode_elements<'t>(
    items: &[&RawValue],
    ety: impl Fn(usize) -> &'t Type,
    steps: &mut Vec<PathStep>,
    leniency: Leniency,
) -> Result<Vec<Value>, CodecError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        steps.push(PathStep::Index(i as i64));
        out.push(decode(item, ety(i), steps, leniency)?);
        steps.pop();
    }
    Ok(out)
}

/// Decodes `{"type": <type JSON>, "value": <value>}`.
fn decode_dynamic(
    node: Node,
    steps: &mut Vec<PathStep>,
    leniency: Leniency,
) -> Result<Value, CodecError> {
    let Node::Object(mut entries) = node else {
        return Err(expected(
            steps,
            "a {\"type\", \"value\"} object for a dynamic value",
            &node,
        ));
    };
    let (Some(ty), Some(value)) = (entries.remove("type"), entries.remove("value")) else {
        return Err(CodecError::at(
            steps,
            "a dynamic value needs both \"type\" and \"value\"",
        ));
    };
    if !entries.is_empty() {
        return Err(CodecError::at(
            steps,
            "a dynamic value may only have \"type\" and \"value\"",
        ));
    }
    let ty = Type::from_json(ty.get().as_bytes()).map_err(|e| CodecError::at(steps, e.message))?;
    let value = decode(value, &ty, steps, leniency)?;
    Ok(match ty {
        Type::Dynamic => value,
        ty => Value::Dynamic(ty, Box::new(value)),
    })
}

fn encode(
    value: &Value,
    ty: &Type,
    steps: &mut Vec<PathStep>,
    out: &mut String,
) -> Result<(), CodecError> {
    if *ty == Type::Dynamic {
        return match value {
            Value::Null => {
                out.push_str("null");
                Ok(())
            }
            Value::Unknown(_) => Err(unknown_error(steps)),
            Value::Dynamic(Type::Dynamic, _) => Err(CodecError::at(
                steps,
                "a dynamic value must carry a concrete type, not dynamic",
            )),
            Value::Dynamic(concrete, inner) => {
                // go-cty writes the value first.
                out.push_str("{\"value\":");
                encode(inner, concrete, steps, out)?;
                out.push_str(",\"type\":");
                out.push_str(&String::from_utf8_lossy(&concrete.to_json()));
                out.push('}');
                Ok(())
            }
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
        (_, Value::Null) => out.push_str("null"),
        (_, Value::Unknown(_)) => return Err(unknown_error(steps)),
        (Type::Bool, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (Type::Number, Value::Number(n)) => match n.normalized() {
            Some(Number::Float(f)) if f.is_infinite() => {
                return Err(CodecError::at(steps, "infinity has no JSON form"));
            }
            normalized => {
                let text = normalized.as_ref().and_then(Number::to_decimal_text);
                let text = text.ok_or_else(|| {
                    CodecError::at(steps, "number is NaN or its decimal text is not a number")
                })?;
                out.push_str(&text);
            }
        },
        (Type::String, Value::String(s)) => push_json_string(out, s),
        (Type::List(ety), Value::List(items)) | (Type::Set(ety), Value::Set(items)) => {
            encode_elements(items, |_| ety, steps, out)?;
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
            encode_elements(items, |i| &etys[i], steps, out)?;
        }
        (Type::Map(ety), Value::Map(entries)) => {
            let typed = entries.iter().map(|(k, v)| (k, v, &**ety));
            encode_members(typed, PathStep::Key, steps, out)?;
        }
        (Type::Object(atys), Value::Object(attrs)) => {
            check_object_attributes(steps, attrs, atys)?;
            let typed = atys.iter().zip(attrs.values()).map(|((k, t), v)| (k, v, t));
            encode_members(typed, PathStep::Attribute, steps, out)?;
        }
        _ => return Err(kind_mismatch(steps, ty, value)),
    }
    Ok(())
}

fn unknown_error(steps: &[PathStep]) -> CodecError {
    CodecError::at(steps, "value is not known; JSON cannot hold unknown values")
}

fn encode_elements<'t>(
    items: &[Value],
    ety: impl Fn(usize) -> &'t Type,
    steps: &mut Vec<PathStep>,
    out: &mut String,
) -> Result<(), CodecError> {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        steps.push(PathStep::Index(i as i64));
        encode(item, ety(i), steps, out)?;
        steps.pop();
    }
    out.push(']');
    Ok(())
}

fn encode_members<'v>(
    members: impl Iterator<Item = (&'v String, &'v Value, &'v Type)>,
    step: fn(String) -> PathStep,
    steps: &mut Vec<PathStep>,
    out: &mut String,
) -> Result<(), CodecError> {
    out.push('{');
    for (i, (key, item, ty)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, key);
        out.push(':');
        steps.push(step(key.clone()));
        encode(item, ty, steps, out)?;
        steps.pop();
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::value::Unknown;

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

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn num(n: Number) -> Value {
        Value::Number(n)
    }

    #[test]
    fn absent_attributes_are_null_and_unknown_ones_depend_on_the_caller() {
        let ty = obj(&[("a", Type::String), ("b", Type::Number)]);
        let value = obj_val(&[("a", s("x")), ("b", Value::Null)]);
        assert_eq!(decode_json(br#"{"a":"x"}"#, &ty).unwrap(), value);

        let json = br#"{"a":"x","old":{"deep":[1]}}"#;
        let e = decode_json(json, &ty).unwrap_err();
        assert_eq!(
            (e.path.to_string(), e.message.as_str()),
            ("old".into(), "unsupported attribute")
        );
        assert_eq!(decode_json_state(json, &ty).unwrap(), value);
    }

    #[test]
    fn numbers_keep_their_precision() {
        let cases: &[(&str, Number)] = &[
            ("42", Number::Int(42)),
            ("-1.0", Number::Int(-1)),
            ("1e2", Number::Int(100)),
            ("0.5", Number::Float(0.5)),
            ("0.1", Number::Decimal("0.1".into())),
            ("\"12\"", Number::Int(12)),
            (
                "123456789012345678901234567890",
                Number::Decimal("123456789012345678901234567890".into()),
            ),
        ];
        for (json, n) in cases {
            assert_eq!(
                decode_json(json.as_bytes(), &Type::Number).unwrap(),
                num(n.clone()),
                "{json}"
            );
        }
        let e = decode_json(b"\"secret\"", &Type::Number).unwrap_err();
        assert!(!e.message.contains("secret"));
        assert_eq!(
            encode_json(&num(Number::Float(0.5)), &Type::Number).unwrap(),
            b"0.5"
        );
        assert_eq!(
            encode_json(&num(Number::Decimal("0.1".into())), &Type::Number).unwrap(),
            b"0.1"
        );
        assert!(encode_json(&num(Number::Float(f64::INFINITY)), &Type::Number).is_err());
    }

    #[test]
    fn primitives_convert_like_go_cty() {
        assert_eq!(
            decode_json(b"\"true\"", &Type::Bool).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(decode_json(b"1.50", &Type::String).unwrap(), s("1.50"));
        assert_eq!(decode_json(b"false", &Type::String).unwrap(), s("false"));
        assert!(decode_json(b"\"yes\"", &Type::Bool).is_err());
        assert!(decode_json(b"[]", &Type::String).is_err());
    }

    #[test]
    fn collections_tuples_and_paths() {
        let ty = Type::Map(Box::new(Type::List(Box::new(Type::Bool))));
        let e = decode_json(br#"{"k":[true,"secret"]}"#, &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "[\"k\"][1]");
        assert!(!e.message.contains("secret"));

        let ty = Type::Tuple(vec![Type::String, Type::Bool]);
        let value = Value::Tuple(vec![s("a\"b"), Value::Bool(false)]);
        assert_eq!(encode_json(&value, &ty).unwrap(), br#"["a\"b",false]"#);
        assert_eq!(decode_json(br#" [ "a\"b" , false ] "#, &ty).unwrap(), value);
        assert!(decode_json(br#"["a"]"#, &ty).is_err());
    }

    #[test]
    fn dynamic_values_are_type_value_objects() {
        let value = Value::Dynamic(
            Type::List(Box::new(Type::Number)),
            Box::new(Value::List(vec![num(Number::Int(1))])),
        );
        let json = encode_json(&value, &Type::Dynamic).unwrap();
        assert_eq!(json, br#"{"value":[1],"type":["list","number"]}"#);
        assert_eq!(decode_json(&json, &Type::Dynamic).unwrap(), value);
        assert_eq!(decode_json(b"null", &Type::Dynamic).unwrap(), Value::Null);
        assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
        assert!(decode_json(br#"{"type":"number","value":1,"x":2}"#, &Type::Dynamic).is_err());
        assert!(decode_json(b"1", &Type::Dynamic).is_err());
    }

    #[test]
    fn objects_encode_sorted_and_unknowns_are_refused() {
        let ty = obj(&[("b", Type::Bool), ("a", Type::String)]);
        let value = obj_val(&[("b", Value::Bool(true)), ("a", Value::Null)]);
        assert_eq!(encode_json(&value, &ty).unwrap(), br#"{"a":null,"b":true}"#);

        let value = obj_val(&[
            ("b", Value::Unknown(Unknown::default())),
            ("a", Value::Null),
        ]);
        let e = encode_json(&value, &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "b");
        assert!(encode_json(&obj_val(&[("a", Value::Null)]), &ty).is_err());
    }

    #[test]
    fn malformed_json_is_an_error() {
        for json in [
            &b""[..],
            b"{",
            b"[1,]",
            b"nul",
            b"\xff",
            b"1 2",
            b"{\"a\":}",
        ] {
            assert!(decode_json(json, &Type::Dynamic).is_err(), "{json:?}");
        }
        let deep = "[".repeat(100_000);
        assert!(decode_json(deep.as_bytes(), &Type::List(Box::new(Type::Dynamic))).is_err());
    }
}
