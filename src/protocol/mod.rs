//! The plugin protocol: everything OpenTofu/Terraform speak to a provider process, and nothing
//! about secrets.
//!
//! - [`value`]: cty types and values, and their msgpack / JSON wire forms (`DynamicValue`).
//! - [`schema`]: the schema model a provider declares (attributes, blocks, sensitivity).
//! - [`diag`]: diagnostics with attribute paths.

pub mod diag;
pub mod schema;
pub mod value;
