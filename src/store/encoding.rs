//! How a value is laid out in each backend, so that Atmos (`atmos secret set`, `!secret`) and this
//! provider read each other's writes (`shared/design/scopes.md`, "Value encoding").
//!
//! The provider hands stores strings; Atmos may have stored objects or lists. Reading always
//! yields text: a JSON string's content, or the JSON text of anything else.

use crate::sensitive::SecretValue;

/// Text for a decoded JSON value: a string's content, anything else as compact JSON.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SSM `SecureString`: a plain string is stored raw; the empty string (which SSM refuses) as
/// JSON `""`.
pub fn ssm_encode(value: &SecretValue) -> String {
    if value.is_empty() {
        "\"\"".to_owned()
    } else {
        value.expose().to_owned()
    }
}

/// SSM read: a stored JSON string (as Atmos writes the empty string) is unquoted; anything else is
/// taken as it is (objects and lists are already JSON text).
pub fn ssm_decode(stored: &str) -> SecretValue {
    match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(serde_json::Value::String(s)) => SecretValue::new(s),
        _ => SecretValue::new(stored.to_owned()),
    }
}

/// Secrets Manager, GCP Secret Manager and Azure Key Vault: JSON.
pub fn json_encode(value: &SecretValue) -> String {
    serde_json::Value::String(value.expose().to_owned()).to_string()
}

/// Secrets Manager, GCP and Azure read: JSON, with a fallback to the raw text for values
/// written by other tools.
pub fn json_decode(stored: &str) -> SecretValue {
    match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(v) => SecretValue::new(text_of(&v)),
        Err(_) => SecretValue::new(stored.to_owned()),
    }
}

/// Vault KV v2: the secret's data is `{ "value": ... }`.
pub fn vault_encode(value: &SecretValue) -> serde_json::Value {
    serde_json::json!({ "value": value.expose() })
}

/// Vault read: the field `value` (`None` when the secret has no such field).
pub fn vault_decode(data: &serde_json::Value) -> Option<SecretValue> {
    data.get("value")
        .filter(|v| !v.is_null())
        .map(|v| SecretValue::new(text_of(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretValue {
        SecretValue::new(v.to_owned())
    }

    #[test]
    fn ssm_round_trips_and_reads_what_atmos_writes() {
        for v in ["plain", "", "multi\nline", "{\"a\":1}", "\"quoted\""] {
            let stored = ssm_encode(&s(v));
            let back = ssm_decode(&stored);
            // A value that is itself a JSON string literal is the one ambiguous case.
            if v != "\"quoted\"" {
                assert_eq!(back.expose(), v, "{v:?}");
            }
        }
        assert_eq!(ssm_encode(&s("")), "\"\"");
        assert_eq!(ssm_decode("{\"user\":\"u\"}").expose(), "{\"user\":\"u\"}");
    }

    #[test]
    fn json_stores_round_trip_and_fall_back_to_raw() {
        for v in ["plain", "", "multi\nline", "ünï \"q\" \\"] {
            assert_eq!(json_decode(&json_encode(&s(v))).expose(), v);
        }
        assert_eq!(json_encode(&s("x")), "\"x\"");
        assert_eq!(json_decode("not json at all").expose(), "not json at all");
        assert_eq!(json_decode("{\"b\":[1,2]}").expose(), "{\"b\":[1,2]}");
        assert_eq!(json_decode("42").expose(), "42");
    }

    #[test]
    fn vault_keeps_the_value_field() {
        let data = vault_encode(&s("v1"));
        assert_eq!(data, serde_json::json!({"value": "v1"}));
        assert_eq!(
            vault_decode(&data).map(|v| v.expose().to_owned()),
            Some("v1".into())
        );
        let obj = serde_json::json!({"value": {"a": true}});
        assert_eq!(
            vault_decode(&obj).map(|v| v.expose().to_owned()),
            Some("{\"a\":true}".into())
        );
        assert!(vault_decode(&serde_json::json!({"other": 1})).is_none());
    }
}
