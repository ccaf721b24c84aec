//! Code generated from `proto/` by `build.rs` (protox + tonic-prost-build): the message types,
//! clients and server traits of the plugin protocol.
//!
//! - [`tfplugin6`]: the provider protocol, version 6.10 (Terraform v1.15 / OpenTofu 1.12).
//! - [`plugin`]: go-plugin's side services (controller, stdio, broker) that a go-plugin client
//!   expects next to the provider service.
//!
//! The `.proto` files are wire-exact copies of the published protocol (names and field numbers);
//! `tests/proto_wire.rs` pins the numbers that are easiest to get wrong.

/// The `tfplugin6` package: messages and the `Provider` service.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// The `plugin` package of hashicorp/go-plugin: `GRPCController`, `GRPCStdio`, `GRPCBroker`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod plugin {
    tonic::include_proto!("plugin");
}
