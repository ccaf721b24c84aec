//! terraform-provider-atmos: an OpenTofu/Terraform provider that resolves secrets declared in Atmos
//! stack configuration and reads or writes their values in real secret backends.
//!
//! The crate is layered; each layer only knows the ones below it (see `ARCHITECTURE.md`):
//!
//! - [`protocol`]: the plugin protocol (go-plugin handshake, mTLS, tfplugin6 over gRPC, cty values).
//!   Knows nothing about secrets.
//! - [`provider`]: the `atmos` provider: schemas, data sources, resources, ephemeral resources.
//!   Knows Terraform semantics, nothing about SDKs.
//! - [`resolve`]: Atmos configuration, stack manifests, secret declarations, scopes, coordinates.
//!   Knows nothing about Terraform.
//! - [`store`]: one trait and one module per secret backend. Knows nothing about Terraform.
//! - [`sensitive`]: the value type every layer uses for secret material.

pub mod protocol;
pub mod provider;
pub mod resolve;
pub mod sensitive;
pub mod store;
