//! The plugin binary: OpenTofu or Terraform starts it and talks to it over gRPC.

fn main() {
    let code = atmos_provider::protocol::serve::run(atmos_provider::provider::AtmosProvider::new());
    std::process::exit(code);
}
