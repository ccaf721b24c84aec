//! Atmos configuration, stack manifests, secret declarations, scopes and coordinates.
//!
//! Knows nothing of Terraform or of any SDK (see `shared/design/scopes.md` for the contract).
