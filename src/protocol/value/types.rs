//! The JSON type constraint (`"string"`, `["list","string"]`, `["object",{...}]`, ...), as
//! go-cty's `Type.MarshalJSON` / `UnmarshalJSON` write and read it.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

use super::{CodecError, Type};
use crate::protocol::diag::AttributePath;

impl Type {
    /// The compact JSON form of this type, as go-cty writes it (object attributes sorted).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write_json(&mut out);
        out.into_bytes()
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Type::Bool => out.push_str("\"bool\""),
            Type::Number => out.push_str("\"number\""),
            Type::String => out.push_str("\"string\""),
            Type::Dynamic => out.push_str("\"dynamic\""),
            Type::List(e) | Type::Set(e) | Type::Map(e) => {
                out.push_str(match self {
                    Type::List(_) => "[\"list\",",
                    Type::Set(_) => "[\"set\",",
                    _ => "[\"map\",",
                });
                e.write_json(out);
                out.push(']');
            }
            Type::Object(attrs) => {
                out.push_str("[\"object\",{");
                for (i, (name, ty)) in attrs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, name);
                    out.push(':');
                    ty.write_json(out);
                }
                out.push_str("}]");
            }
            Type::Tuple(elems) => {
                out.push_str("[\"tuple\",[");
                for (i, ty) in elems.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ty.write_json(out);
                }
                out.push_str("]]");
            }
        }
    }

    /// Parses a JSON type constraint. The optional third element of an object type (its
    /// optional attributes, meaningful only for function parameters) is accepted and dropped.
    pub fn from_json(bytes: &[u8]) -> Result<Type, CodecError> {
        let json: Json = serde_json::from_slice(bytes).map_err(|e| {
            type_error(format!(
                "type constraint is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        type_from_json(&json)
    }

    /// A short name of this type's kind (`list`, `object`, ...), for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Number => "number",
            Type::String => "string",
            Type::Dynamic => "dynamic",
            Type::List(_) => "list",
            Type::Set(_) => "set",
            Type::Map(_) => "map",
            Type::Object(_) => "object",
            Type::Tuple(_) => "tuple",
        }
    }
}

/// HCL-like spelling: `list(string)`, `object({a=number})`, `tuple([bool])`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::List(e) | Type::Set(e) | Type::Map(e) => write!(f, "{}({e})", self.kind()),
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (name, ty)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={ty}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(elems) => {
                f.write_str("tuple([")?;
                for (i, ty) in elems.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{ty}")?;
                }
                f.write_str("])")
            }
            _ => f.write_str(self.kind()),
        }
    }
}

/// Appends `s` as a JSON string literal.
pub(super) fn push_json_string(out: &mut String, s: &str) {
    // Serializing a &str cannot fail; the fallback only keeps this free of panics.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

fn type_error(message: impl Into<String>) -> CodecError {
    CodecError {
        path: AttributePath::root(),
        message: message.into(),
    }
}

fn type_from_json(json: &Json) -> Result<Type, CodecError> {
    match json {
        Json::String(name) => match name.as_str() {
            "bool" => Ok(Type::Bool),
            "number" => Ok(Type::Number),
            "string" => Ok(Type::String),
            "dynamic" => Ok(Type::Dynamic),
            _ => Err(type_error("invalid primitive type name in type constraint")),
        },
        Json::Array(items) => {
            let kind = items
                .first()
                .and_then(Json::as_str)
                .ok_or_else(|| type_error("complex type constraint must start with its kind"))?;
            let arity_ok = match kind {
                "object" => items.len() == 2 || items.len() == 3,
                _ => items.len() == 2,
            };
            if !arity_ok {
                return Err(type_error(format!(
                    "{kind} type constraint has {} elements",
                    items.len()
                )));
            }
            let body = &items[1];
            match kind {
                "list" => Ok(Type::List(Box::new(type_from_json(body)?))),
                "set" => Ok(Type::Set(Box::new(type_from_json(body)?))),
                "map" => Ok(Type::Map(Box::new(type_from_json(body)?))),
                "tuple" => {
                    let elems = body
                        .as_array()
                        .ok_or_else(|| type_error("tuple type constraint needs an array"))?;
                    elems
                        .iter()
                        .map(type_from_json)
                        .collect::<Result<_, _>>()
                        .map(Type::Tuple)
                }
                "object" => {
                    let attrs = body
                        .as_object()
                        .ok_or_else(|| type_error("object type constraint needs an object"))?;
                    let attrs: BTreeMap<String, Type> = attrs
                        .iter()
                        .map(|(name, ty)| Ok((name.clone(), type_from_json(ty)?)))
                        .collect::<Result<_, CodecError>>()?;
                    if let Some(optional) = items.get(2) {
                        let names = optional.as_array().ok_or_else(|| {
                            type_error("optional attributes of an object type must be an array")
                        })?;
                        for name in names {
                            if !name.as_str().is_some_and(|n| attrs.contains_key(n)) {
                                return Err(type_error(
                                    "optional attribute list names an attribute the object type lacks",
                                ));
                            }
                        }
                    }
                    Ok(Type::Object(attrs))
                }
                _ => Err(type_error("invalid complex type kind in type constraint")),
            }
        }
        _ => Err(type_error("type constraint must be a string or an array")),
    }
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

    #[test]
    fn writes_compact_json_like_go_cty() {
        let cases = [
            (Type::String, r#""string""#),
            (Type::Dynamic, r#""dynamic""#),
            (Type::List(Box::new(Type::String)), r#"["list","string"]"#),
            (Type::Set(Box::new(Type::Bool)), r#"["set","bool"]"#),
            (
                Type::Map(Box::new(Type::List(Box::new(Type::Number)))),
                r#"["map",["list","number"]]"#,
            ),
            (
                obj(&[("b", Type::Number), ("a\"x", Type::String)]),
                r#"["object",{"a\"x":"string","b":"number"}]"#,
            ),
            (obj(&[]), r#"["object",{}]"#),
            (
                Type::Tuple(vec![Type::String, Type::Dynamic]),
                r#"["tuple",["string","dynamic"]]"#,
            ),
            (Type::Tuple(vec![]), r#"["tuple",[]]"#),
        ];
        for (ty, json) in cases {
            assert_eq!(String::from_utf8(ty.to_json()).unwrap(), json);
            assert_eq!(Type::from_json(json.as_bytes()).unwrap(), ty);
        }
    }

    #[test]
    fn reads_optional_attributes_and_whitespace() {
        let ty =
            Type::from_json(br#" [ "object" , {"a":"string","b":"number"}, ["a"] ] "#).unwrap();
        assert_eq!(ty, obj(&[("a", Type::String), ("b", Type::Number)]));
    }

    #[test]
    fn refuses_malformed_constraints() {
        for json in [
            r#""str""#,
            r#"["list"]"#,
            r#"["list","string","x"]"#,
            r#"["object",{"a":"string"},["b"]]"#,
            r#"["object",["string"]]"#,
            r#"["tuple","string"]"#,
            r#"["frob","string"]"#,
            r#"[]"#,
            r#"42"#,
            r#""string" "number""#,
            r#"["list","string""#,
        ] {
            assert!(Type::from_json(json.as_bytes()).is_err(), "{json}");
        }
    }

    #[test]
    fn displays_like_hcl() {
        let ty = obj(&[("a", Type::List(Box::new(Type::String)))]);
        assert_eq!(ty.to_string(), "object({a=list(string)})");
    }
}
