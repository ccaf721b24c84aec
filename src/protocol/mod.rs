//! The plugin protocol: everything OpenTofu/Terraform speak to a provider process, and nothing
//! about secrets.
//!
//! - [`value`]: cty types and values, and their msgpack / JSON wire forms (`DynamicValue`).
//! - [`schema`]: the schema model a provider declares (attributes, blocks, sensitivity).
//! - [`diag`]: diagnostics with attribute paths.
//! - [`proto`]: generated gRPC code for tfplugin6 and go-plugin's side services.
//! - [`service`]: the interface a provider implements, free of gRPC.
//! - [`server`]: the tfplugin6 adapter (decode, call, encode, null write-only attributes).
//! - [`handshake`], [`tls`], [`serve`], [`log`]: running as a go-plugin plugin.

pub mod diag;
pub mod handshake;
pub mod log;
pub mod proto;
pub mod schema;
pub mod serve;
pub mod server;
pub mod service;
pub mod tls;
pub mod value;
