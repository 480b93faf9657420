//! Compiles every contract under `proto/` with protox (no system protoc), generates tonic
//! clients and servers, proto3 JSON (pbjson) impls, and a descriptor set with every option, for
//! gRPC reflection and for the gateway's REST transcoding.

use std::{
    env, fs, io,
    path::{Path, PathBuf},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_source_info(true).include_imports(true).open_files(&files)?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("descriptor.bin");
    // Encoded by protox itself so that custom options (`google.api.http`, the REST options the
    // gateway reads) survive; prost's own descriptor types would drop them.
    fs::write(&descriptor_path, compiler.encode_file_descriptor_set())?;

    // Type names let the gateway find a message's descriptor from its Rust type.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds_with_config(compiler.file_descriptor_set(), config)?;

    pbjson_build::Builder::new()
        .register_descriptors(&fs::read(&descriptor_path)?)?
        .extern_path(".google.protobuf", "::pbjson_types")
        .build(&[".helpdesk"])?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            out.push(path);
        }
    }
    Ok(())
}
