//! Shared helpers of the tests that need a real kernel: visible skips, leak accounting.
#![deny(unsafe_code)]
use std::fs;

pub mod conditions;

pub use probe::testing::{bpf_unavailable, need_bpf, skip, skip_log};

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
