//! The static (musl) build links faster memcpy and memmove than musl's
//! (`src/sys/musl_mem.c` says why); every other build uses its libc's.
//! Every build also compiles them under other names, for their tests
//! (`src/sys/mod.rs`).

fn build() -> cc::Build {
    let mut b = cc::Build::new();
    b.file("src/sys/musl_mem.c")
        .opt_level(2)
        // Never turn the copy loops back into calls to memcpy/memmove.
        .flag("-fno-builtin")
        .flag("-fno-tree-loop-distribute-patterns");
    b
}

fn main() {
    println!("cargo:rerun-if-changed=src/sys/musl_mem.c");
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        return;
    }
    build()
        .define("memcpy", "logpipe_memcpy")
        .define("memmove", "logpipe_memmove")
        .compile("logpipe_mem_checked");
    if env == "musl" {
        build().compile("logpipe_musl_mem");
    }
}
