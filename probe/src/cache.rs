//! An opt-in cache of probe answers on disk, for tracers that start often.
//!
//! Valid only for the kernel *boot* and the *privileges* that wrote it: the header names
//! the kernel release, the boot id (/proc/sys/kernel/random/boot_id), the BTF's size and
//! the writer's effective capabilities (which decide EPERM answers), and any mismatch or
//! parse error means the file is ignored (and rewritten on save). Written atomically
//! (a temporary file in the same directory, then rename). Because its answers decide which
//! code a privileged tracer loads, it is refused unless owned by root and writable by
//! nobody else.
//!
//! Format: one JSON header line, then one line per answer: `<feature key>\t<answer JSON>`.
//! Lines are indexed on load and parsed only when asked for, so a warm start of a few
//! questions costs one small read.
use std::{
    collections::HashMap,
    fs,
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::support::Answer;

/// The default cache file for `bpf-features --cache`.
pub const DEFAULT_PATH: &str = "/var/cache/bpf-features/answers";

/// 2: the identity gained the lockdown mode and `kernel.unprivileged_bpf_disabled`.
const SCHEMA: u32 = 2;

/// A cache larger than this is not ours (a full report's is ~2 MB).
const MAX_SIZE: u64 = 64 << 20;

/// Which kernel boot a cache belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The file format's version; a cache of another format is stale.
    pub schema: u32,
    /// `uname -r`.
    pub release: String,
    /// /proc/sys/kernel/random/boot_id: a reboot, maybe into a rebuilt kernel of the same
    /// release, invalidates the cache.
    pub boot_id: String,
    /// Size of /sys/kernel/btf/vmlinux (0 without it): a cheap fingerprint of the build.
    pub btf_size: u64,
    /// The effective capability mask: an "unknown (EPERM)" holds only for the same one.
    pub cap_eff: u64,
    /// The lockdown mode (it can be raised while the kernel runs) and
    /// `kernel.unprivileged_bpf_disabled`: both change which loads are refused.
    #[serde(default)]
    pub lockdown: String,
    /// The sysctl as read (`0`, `1` or `2`; empty when unreadable).
    #[serde(default)]
    pub unprivileged_bpf_disabled: String,
}

impl Identity {
    /// What differs between `self` (the file's) and `current`, in words.
    fn differences(&self, current: &Identity) -> String {
        let mut d = Vec::new();
        let mut field = |name: &str, was: String, now: String| {
            if was != now {
                d.push(format!("{name} {was} (now {now})"));
            }
        };
        field(
            "format",
            self.schema.to_string(),
            current.schema.to_string(),
        );
        field("kernel", self.release.clone(), current.release.clone());
        field("boot id", self.boot_id.clone(), current.boot_id.clone());
        field(
            "BTF size",
            self.btf_size.to_string(),
            current.btf_size.to_string(),
        );
        field(
            "capabilities",
            format!("{:#x}", self.cap_eff),
            format!("{:#x}", current.cap_eff),
        );
        field("lockdown", self.lockdown.clone(), current.lockdown.clone());
        field(
            "kernel.unprivileged_bpf_disabled",
            self.unprivileged_bpf_disabled.clone(),
            current.unprivileged_bpf_disabled.clone(),
        );
        d.join(", ")
    }
}

impl Identity {
    /// The running kernel's identity: three cheap reads, no BTF parse.
    pub fn current() -> Identity {
        Identity {
            schema: SCHEMA,
            release: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            btf_size: fs::metadata("/sys/kernel/btf/vmlinux").map_or(0, |m| m.len()),
            cap_eff: fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| crate::kernel::parse_cap_eff(&s))
                .unwrap_or(0),
            lockdown: crate::conditions::Lockdown::read_mode_quietly().unwrap_or_default(),
            unprivileged_bpf_disabled: fs::read_to_string(
                "/proc/sys/kernel/unprivileged_bpf_disabled",
            )
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        }
    }
}

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the file failed.
    #[error("cache {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Owned by someone other than root, or writable by group or others (file or directory).
    #[error(
        "cache {path} is refused: it must be owned by root and writable by nobody else \
         (owner uid {uid}, mode {mode:o}); remove it or fix its owner and mode"
    )]
    Unsafe {
        /// The file or directory refused.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// Written for another [`Identity`]; the text says what differs.
    #[error("cache {0} was written for another setting ({1}); ignored, and rewritten on save")]
    Stale(PathBuf, String),
    /// A FIFO, a device, a directory or too big: never read.
    #[error("cache {0} is not a regular file of at most 64 MiB; remove it or name another")]
    NotAFile(PathBuf),
    /// A header or line that does not parse (or an answer that does not serialise).
    #[error("cache {0} is malformed: {1}; ignored")]
    Malformed(PathBuf, String),
}

/// A loaded cache file.
pub struct DiskCache {
    text: String,
    index: HashMap<String, (usize, usize)>,
}

fn check_ownership(path: &Path, m: &fs::Metadata) -> Result<(), CacheError> {
    let mode = m.mode() & 0o7777;
    if m.uid() != 0 || mode & 0o022 != 0 {
        return Err(CacheError::Unsafe {
            path: path.to_path_buf(),
            uid: m.uid(),
            mode,
        });
    }
    Ok(())
}

impl DiskCache {
    /// Loads `path` if it belongs to `identity` and is safe to trust.
    pub fn load(path: &Path, identity: &Identity) -> Result<DiskCache, CacheError> {
        let m = fs::metadata(path).map_err(|e| CacheError::Io(path.into(), e))?;
        // A FIFO or a device would block or never end the read below.
        if !m.is_file() || m.len() > MAX_SIZE {
            return Err(CacheError::NotAFile(path.into()));
        }
        check_ownership(path, &m)?;
        if let Some(dir) = path.parent().and_then(|d| fs::metadata(d).ok()) {
            check_ownership(path.parent().unwrap_or(path), &dir)?;
        }
        let text = fs::read_to_string(path).map_err(|e| CacheError::Io(path.into(), e))?;
        let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
        let found: Identity = serde_json::from_str(header)
            .map_err(|e| CacheError::Malformed(path.into(), e.to_string()))?;
        if &found != identity {
            return Err(CacheError::Stale(path.into(), found.differences(identity)));
        }
        let mut index = HashMap::new();
        let mut at = header.len() + 1;
        for line in body.split_inclusive('\n') {
            let content = line.trim_end_matches('\n');
            let Some(tab) = content.find('\t') else {
                return Err(CacheError::Malformed(
                    path.into(),
                    format!("no tab at byte {at}"),
                ));
            };
            index.insert(
                content[..tab].to_string(),
                (at + tab + 1, at + content.len()),
            );
            at += line.len();
        }
        Ok(DiskCache { text, index })
    }

    /// The answer recorded for `key` (a [`crate::FeatureKey`] in text form).
    pub fn get(&self, key: &str) -> Option<Answer> {
        let (a, b) = *self.index.get(key)?;
        serde_json::from_str(&self.text[a..b]).ok()
    }

    /// How many answers the file holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the file holds no answer.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every recorded key with its raw answer.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.index
            .iter()
            .map(|(k, (a, b))| (k.as_str(), &self.text[*a..*b]))
    }
}

/// Writes `answers` (key, answer) for `identity` to `path` atomically, mode 0644. The
/// directory is created (0755) if missing.
pub fn save<'a>(
    path: &Path,
    identity: &Identity,
    answers: impl IntoIterator<Item = (String, &'a Answer)>,
) -> Result<(), CacheError> {
    let io = |e| CacheError::Io(path.into(), e);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    let mut out = serde_json::to_string(identity)
        .map_err(|e| CacheError::Malformed(path.into(), e.to_string()))?;
    out.push('\n');
    for (k, a) in answers {
        let json = serde_json::to_string(a)
            .map_err(|e| CacheError::Malformed(path.into(), e.to_string()))?;
        out.push_str(&k);
        out.push('\t');
        out.push_str(&json);
        out.push('\n');
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(out.as_bytes()).map_err(io)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::Support;

    fn id() -> Identity {
        Identity {
            schema: SCHEMA,
            release: "6.1.0-56-amd64".into(),
            boot_id: "b".into(),
            btf_size: 1,
            cap_eff: 0x1ff,
            lockdown: "none".into(),
            unprivileged_bpf_disabled: "2".into(),
        }
    }

    #[test]
    fn round_trip_and_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("c");
        let yes = Answer::probed(Support::supported());
        let no = Answer::probed(Support::unknown("x\ty", None));
        save(
            &path,
            &id(),
            [
                ("misc:ringbuf".to_string(), &yes),
                ("helper:bpf_x@kprobe".to_string(), &no),
            ],
        )
        .unwrap();
        let euid_root = nix::unistd::geteuid().is_root();
        match DiskCache::load(&path, &id()) {
            Ok(c) => {
                assert!(euid_root);
                assert_eq!(c.len(), 2);
                assert_eq!(c.get("misc:ringbuf"), Some(yes));
                assert_eq!(c.get("helper:bpf_x@kprobe"), Some(no));
                assert_eq!(c.get("misc:nothing"), None);
            }
            Err(CacheError::Unsafe { .. }) => {
                assert!(!euid_root, "a root-owned 0644 file was refused")
            }
            Err(e) => panic!("{e}"),
        }
        let mut other = id();
        other.boot_id = "another boot".into();
        if euid_root {
            let e = DiskCache::load(&path, &other).err().unwrap();
            assert!(matches!(e, CacheError::Stale(..)), "{e}");
            assert!(
                e.to_string().contains("boot id b (now another boot)"),
                "{e}"
            );
            let mut nobody = id();
            nobody.cap_eff = 0;
            let e = DiskCache::load(&path, &nobody).err().unwrap();
            assert!(
                e.to_string().contains("capabilities 0x1ff (now 0x0)"),
                "{e}"
            );
            fs::write(&path, "not json\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                DiskCache::load(&path, &id()),
                Err(CacheError::Malformed(..))
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
            let e = DiskCache::load(&path, &id()).err().unwrap();
            assert!(matches!(e, CacheError::Unsafe { .. }), "{e}");
            assert!(e.to_string().contains("writable by nobody else"));
        }
    }

    #[test]
    fn a_fifo_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = DiskCache::load(&fifo, &id()).err().unwrap();
        assert!(matches!(e, CacheError::NotAFile(_)), "{e}");
    }
}
