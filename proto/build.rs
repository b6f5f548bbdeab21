//! Compiles proto/oms/**/*.proto without a system `protoc`: protox parses them into a file
//! descriptor set, tonic-prost-build generates the messages and services from it, and the
//! encoded set is kept for server reflection.

use std::path::{Path, PathBuf};

const PROTO_ROOT: &str = "oms";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    collect_protos(Path::new(PROTO_ROOT), &mut files)?;
    files.sort();
    // The directories too: a new package's folder or file changes their modification times.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        if let Some(dir) = file.parent() {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
    }

    let descriptor_set = protox::compile(&files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("oms_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptor_set),
    )?;

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .compile_fds(descriptor_set)?;
    Ok(())
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
