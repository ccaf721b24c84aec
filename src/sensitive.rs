//! Secret material, in a type that cannot be printed, logged or serialized by accident and is
//! wiped from memory when dropped.
//!
//! `SecretValue` deliberately implements neither `Display` nor `Serialize`; its `Debug` prints a
//! fixed placeholder. The only way to the bytes is [`SecretValue::expose`], which makes every use
//! of the plain value easy to find in review.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret value. Cheap to clone (shared, reference-counted); the buffer is zeroed when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<String>>);

impl SecretValue {
    /// Wraps a value; the caller gives up its plain copy.
    pub fn new(value: String) -> Self {
        SecretValue(Arc::new(Zeroizing::new(value)))
    }

    /// The plain value. Call it only where the value must leave the process (a backend write, the
    /// wire to Terraform).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Length in bytes; safe to log.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        SecretValue::new(value)
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        // Not constant-time: used for change detection, never for authentication.
        self.expose() == other.expose()
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::new("canary-7f3a".to_owned());
        let printed = format!("{v:?} {:?}", Some(v.clone()));
        assert!(!printed.contains("canary-7f3a"), "{printed}");
        assert_eq!(v.expose(), "canary-7f3a");
    }
}
