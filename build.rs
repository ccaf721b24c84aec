//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so no system `protoc` is needed.
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files: Vec<PathBuf> = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    let fds = protox::compile(&files, [dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
