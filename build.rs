//! Compiles the API schema (`proto/giftrank/v1/ranker.proto`) into Rust at build time:
//! the messages, the `Ranker` gRPC server and client. protox parses the schema in Rust,
//! so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["giftrank/v1/ranker.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // The client is for tests and Rust callers, who bring their own channel.
        .build_transport(false)
        // Sorted maps: every candidate's features come in the same order, which the
        // feature lookup's per-position cache relies on to stay fast.
        .btree_map(".")
        .codec_path("crate::proto::Codec")
        .compile_fds(descriptors)?;
    Ok(())
}
