//! The plugin protocol: everything OpenTofu/Terraform speak to a provider process, and nothing
//! about secrets.
//!
//! - [`value`]: cty types and values, and their msgpack / JSON wire forms (`DynamicValue`).
//! - [`schema`]: the schema model a provider declares (attributes, blocks, sensitivity).
//! - [`diag`]: diagnostics with attribute paths.
//! - [`proto`]: generated gRPC code for tfplugin6 and go-plugin's side services.

pub mod diag;
pub mod proto;
pub mod schema;
pub mod value;
