//! Shared helpers of the tests that need a real kernel: visible skips, leak accounting.
#![deny(unsafe_code)]
use std::{fs, io::Write, path::PathBuf};

pub mod conditions;

/// Where skipped tests are recorded; `scripts/test.sh` prints this file at the end, so a
/// skip is never silent.
pub fn skip_log() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("skipped-tests.txt")
}

/// Records and prints that `test` was skipped, and why.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Why BPF programs cannot be loaded by this test process, if they cannot.
pub fn bpf_unavailable() -> Option<String> {
    let sys = probe::SystemInfo::read();
    if let Some(why) = sys.why_probing_is_impossible() {
        return Some(why);
    }
    let insns = probe::insn::return_zero();
    let load = probe::sys::ProgLoad::new(probe::ProgramType::SOCKET_FILTER.0, &insns);
    match probe::sys::prog_load(&load, None) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "a minimal socket_filter does not load: {}",
            e.errno
        )),
    }
}

/// Skips the calling test (by name) when BPF is unavailable. Use as
/// `let Some(_) = integration::need_bpf("name") else { return };`
pub fn need_bpf(test: &str) -> Option<()> {
    match bpf_unavailable() {
        Some(why) => {
            skip(test, &why);
            None
        }
        None => Some(()),
    }
}

/// Skips the calling test (by name) unless BPF loads and fentry on a BPF program is
/// supported here; returns the kernel's features otherwise.
pub fn need_fentry_on_bpf_prog(test: &str) -> Option<probe::Features> {
    use probe::FeatureSource;
    need_bpf(test)?;
    let f = probe::Features::new(probe::Options::default());
    let fentry = f.misc(probe::Misc::FentryBpfProg);
    if !fentry.is_supported() {
        skip(
            test,
            &format!("fentry on a BPF program cannot load here: {fentry}"),
        );
        return None;
    }
    Some(f)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Ids of every BPF program, map, link and BTF object on the system.
pub fn bpf_objects() -> Vec<(probe::sys::ObjKind, Vec<u32>)> {
    use probe::sys::{ObjKind, object_ids};
    [ObjKind::Prog, ObjKind::Map, ObjKind::Link, ObjKind::Btf]
        .into_iter()
        .map(|k| (k, object_ids(k).unwrap_or_default()))
        .collect()
}

/// Ids of BPF objects created since `before` that are still loaded. The kernel frees BTF
/// and maps after an RCU grace period, so a closed object can linger briefly: poll for
/// up to two seconds before calling anything a leak.
pub fn bpf_objects_left(
    before: &[(probe::sys::ObjKind, Vec<u32>)],
) -> Vec<(probe::sys::ObjKind, u32)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left: Vec<_> = bpf_objects()
            .into_iter()
            .flat_map(|(k, ids)| {
                let old = before
                    .iter()
                    .find(|(b, _)| *b == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                ids.into_iter()
                    .filter(move |id| !old.contains(id))
                    .map(move |id| (k, id))
            })
            .collect();
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
