//! Compiles src/bpf/*.bpf.c to BPF objects with clang; src/lib.rs embeds them.
//!
//! `BPF_CLANG` names the compiler; otherwise the first of clang, clang-19 … clang-14 found.
//! Output is reproducible: the checkout path is mapped away from the debug info.
use std::{env, path::PathBuf, process::Command};

const PROGRAMS: &[&str] = &[
    "tc_target",
    "func_ip",
    "kprobe_target",
    "kprobe_tracer",
    "example_tracer",
    "extern_user",
    "loop_sum",
    "skb_tracer",
];

fn find_clang() -> Result<String, String> {
    if let Ok(c) = env::var("BPF_CLANG") {
        return Ok(c);
    }
    for c in [
        "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
    ] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(c.to_string());
        }
    }
    Err(
        "no clang found: the BPF programs of bpf-features-ebpf are compiled from C at build \
         time. Install it (Debian: `apt-get install clang libbpf-dev`, or run \
         scripts/setup.sh) or set BPF_CLANG=/path/to/clang."
            .into(),
    )
}

fn main() {
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let clang = match find_clang() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch");
    // Debian keeps asm/ headers under the multiarch directory.
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    for name in PROGRAMS {
        let src = manifest.join("src/bpf").join(format!("{name}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let obj = out.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{multiarch}"))
            .arg(format!("-fdebug-prefix-map={}=.", manifest.display()))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("error: {clang} failed ({s}) on {}", src.display());
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("error: cannot run {clang}: {e}");
                std::process::exit(1);
            }
        }
    }
}
