//! kfuncs, the helpers of every kernel after 6.2 (5.13).
//!
//! - Layer (a), [`kernel_answer`]: does the kernel have it? From BTF, which every caller
//!   may read: a `FUNC` of that name in vmlinux or a loaded module's BTF, tagged
//!   `bpf_kfunc` where the kernel tags kfuncs; where it does not (6.1 and before, and
//!   functions 6.2-6.4 had not converted yet), the table of well-known kfuncs
//!   ([`crate::names::kfunc_table`]) says which functions are kfuncs and since when.
//! - Layer (b), [`answer`]: may a program in this context call it? One load of
//!   `call <kfunc>; r0 = 0; exit` with the context's real setup, classified by the
//!   verifier's words ([`crate::support::classify_kfunc_load`]).
use std::path::Path;

use crate::{
    btf::BtfFuncs,
    insn,
    kernel::KernelRelease,
    names::{
        AttachContext, Since, closest,
        kfunc_table::{KFUNCS, KfuncRow},
    },
    prober::{Prober, load_and_classify},
    support::{Evidence, Scope, Support, classify_kfunc_load},
};

/// Where the kernel keeps its BTF: `vmlinux` and one split blob per loaded module.
pub const BTF_DIR: &str = "/sys/kernel/btf";

/// A kfunc this kernel has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelKfunc {
    /// Its name.
    pub name: String,
    /// Its BTF id (in its module's id space, after vmlinux's).
    pub btf_id: u32,
    /// The module whose BTF has it; `None` for vmlinux.
    pub module: Option<String>,
    /// Whether BTF tags it `bpf_kfunc` (else the table says it is a kfunc).
    pub tagged: bool,
    /// The release it appeared in, when the table knows it.
    pub since: Option<Since>,
}

/// The functions of vmlinux's and every loaded module's BTF.
#[derive(Debug, Default)]
pub struct KfuncIndex {
    vmlinux: BtfFuncs,
    modules: Vec<(String, BtfFuncs)>,
}

impl KfuncIndex {
    /// Reads [`BTF_DIR`]: vmlinux, then every module blob on top of it. A module blob that
    /// does not parse is skipped (it can only hide that module's kfuncs).
    pub fn read() -> Result<Self, String> {
        Self::read_dir(Path::new(BTF_DIR))
    }

    /// Reads a directory laid out as [`BTF_DIR`].
    pub fn read_dir(dir: &Path) -> Result<Self, String> {
        let vmlinux_path = dir.join("vmlinux");
        let base = crate::sys::read_file(&vmlinux_path)
            .map_err(|e| format!("{}: {e}", vmlinux_path.display()))?;
        Self::from_vmlinux(&base, dir)
    }

    /// The index of vmlinux's blob, already read, and the module blobs of `dir`.
    pub fn from_vmlinux(base: &[u8], dir: &Path) -> Result<Self, String> {
        Self::from_blobs(base, &crate::btf::module_blobs(dir))
    }

    /// The index of a vmlinux blob and module blobs (name, split BTF).
    pub fn from_blobs(vmlinux: &[u8], modules: &[(String, Vec<u8>)]) -> Result<Self, String> {
        let base = BtfFuncs::parse(vmlinux).map_err(|e| format!("vmlinux BTF: {e}"))?;
        let mut mods: Vec<(String, BtfFuncs)> = modules
            .iter()
            .filter_map(|(n, d)| {
                BtfFuncs::parse_split(d, (vmlinux, &base))
                    .ok()
                    .map(|f| (n.clone(), f))
            })
            .collect();
        mods.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(KfuncIndex {
            vmlinux: base,
            modules: mods,
        })
    }

    /// Whether this kernel tags its kfuncs in BTF (6.2+ built with pahole 1.25+).
    pub fn tags_kfuncs(&self) -> bool {
        self.vmlinux.tagged > 0
    }

    /// The names of the loaded modules that have BTF.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|(n, _)| n.as_str())
    }

    /// Every kfunc this kernel has, by name: the tagged ones and the table's rows whose
    /// function is in BTF.
    pub fn kfuncs(&self, release: Option<&KernelRelease>) -> Vec<KernelKfunc> {
        let mut names: Vec<&str> = self
            .blobs()
            .flat_map(|(_, f)| f.kfunc_names())
            .chain(KFUNCS.iter().map(|r| r.name))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| match self.find(n, release) {
                Found::Kfunc(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    fn blobs(&self) -> impl Iterator<Item = (Option<&str>, &BtfFuncs)> {
        std::iter::once((None, &self.vmlinux))
            .chain(self.modules.iter().map(|(n, f)| (Some(n.as_str()), f)))
    }

    /// What BTF and the table say of `name`.
    pub fn find(&self, name: &str, release: Option<&KernelRelease>) -> Found {
        let row = KFUNCS.iter().find(|r| r.name == name);
        let Some((module, func)) = self
            .blobs()
            .find_map(|(m, f)| f.get(name).map(|func| (m, func)))
        else {
            return match row.and_then(|r| r.module) {
                Some(m) if !self.modules.iter().any(|(n, _)| n == m) => Found::ModuleNotLoaded(m),
                _ => Found::Absent,
            };
        };
        let kfunc = |tagged: bool| {
            Found::Kfunc(KernelKfunc {
                name: name.to_string(),
                btf_id: func.id,
                module: module.map(str::to_string),
                tagged,
                since: row.map(|r| r.since),
            })
        };
        if func.kfunc_tag {
            return kfunc(true);
        }
        match row {
            // A kernel that tags kfuncs tags every kfunc its build registers (pahole's
            // decl_tag_kfuncs reads the build's kfunc sets, 6.11+): an untagged function is
            // none here, whatever the table says — 7.x keeps `bpf_wq_set_callback_impl` in
            // BTF untagged (and without an address) beside the tagged
            // `bpf_wq_set_callback`; 6.18 without CONFIG_SYSTEM_DATA_VERIFICATION keeps
            // `bpf_verify_pkcs7_signature` for its own use.
            _ if self.tags_kfuncs() => Found::NotKfunc,
            Some(r) if release.is_none_or(|rel| rel.reached(r.since)) => kfunc(false),
            Some(r) => Found::TooOld(*r),
            None => Found::Untold,
        }
    }

    /// The kfunc names closest to `name`, for "did you mean".
    pub fn closest(&self, name: &str) -> Option<String> {
        let names: Vec<&str> = self
            .blobs()
            .flat_map(|(_, f)| f.kfunc_names())
            .chain(KFUNCS.iter().map(|r| r.name))
            .filter(|n| *n != name)
            .collect();
        closest(name, names)
    }
}

/// What BTF and the table say of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A kfunc of this kernel.
    Kfunc(KernelKfunc),
    /// A kernel function, but the kernel tags kfuncs and this one is untagged and unknown
    /// to the table.
    NotKfunc,
    /// A kernel function; the kernel does not tag kfuncs and the table does not know it.
    Untold,
    /// A function of that name, but the table says the kfunc came later than this release.
    TooOld(KfuncRow),
    /// Not in BTF, and the table says its module is not loaded.
    ModuleNotLoaded(&'static str),
    /// No function of that name in vmlinux or any loaded module.
    Absent,
}

/// A kfunc answer's key in the disk cache: `kfunc:NAME` for the kernel's layer,
/// `kfunc:NAME@CONTEXT` for a context (the `--assume` spelling).
pub(crate) fn cache_key(context: Option<AttachContext>, name: &str) -> String {
    crate::assume::Assumed::Kfunc {
        name: name.to_string(),
        context,
    }
    .to_string()
}

/// Layer (a): does the kernel have the kfunc `name`? `index` is the kernel's BTF, or why
/// it could not be read.
pub fn kernel_answer(
    index: Result<&KfuncIndex, &str>,
    release: Option<&KernelRelease>,
    name: &str,
) -> Support {
    let index = match index {
        Ok(i) => i,
        Err(why) => {
            return Support::unknown(
                format!("kfuncs are found in the kernel's BTF, and it cannot be read: {why}"),
                None,
            );
        }
    };
    let ev = || {
        Evidence::probe(format!(
            "BTF of vmlinux and {} loaded modules",
            index.modules.len()
        ))
    };
    let unsupported = |detail: String| Support::Unsupported {
        scope: Scope::Kernel,
        evidence: ev().with_detail(detail),
    };
    match index.find(name, release) {
        Found::Kfunc(k) => {
            let how = if k.tagged {
                "tagged bpf_kfunc".to_string()
            } else {
                match k.since {
                    Some(s) => format!("a kfunc since {s} (table; this kernel does not tag it)"),
                    None => "a kfunc (table)".to_string(),
                }
            };
            let place = k.module.as_deref().unwrap_or("vmlinux");
            Support::Supported {
                evidence: Some(ev().with_detail(format!(
                    "FUNC {name} (BTF id {} in {place}), {how}",
                    k.btf_id
                ))),
            }
        }
        Found::NotKfunc => unsupported(match KFUNCS.iter().find(|r| r.name == name) {
            Some(r) => format!(
                "{name} is a kernel function, and this kernel tags every kfunc its build \
                 registers but not it (a kfunc since {} elsewhere: not built in, or renamed)",
                r.since
            ),
            None => format!("{name} is a kernel function but not a kfunc (no bpf_kfunc tag)"),
        }),
        Found::Untold => Support::unknown(
            format!(
                "{name} is a kernel function; this kernel does not tag kfuncs in BTF and the \
                 table of known kfuncs does not list it"
            ),
            Some(ev()),
        ),
        Found::TooOld(r) => unsupported(format!(
            "the table says {name} became a kfunc in {}; this kernel is older",
            r.since
        )),
        Found::ModuleNotLoaded(m) => Support::unknown(
            format!("{name} belongs to module {m}, which is not loaded (modprobe {m})"),
            Some(ev()),
        ),
        Found::Absent => {
            let hint = match KFUNCS.iter().find(|r| r.name == name) {
                Some(r) => format!("; it is a kfunc since {}", r.since),
                None => index
                    .closest(name)
                    .map(|c| format!("; did you mean {c}?"))
                    .unwrap_or_default(),
            };
            unsupported(format!(
                "no function {name} in the kernel's BTF (vmlinux and loaded modules){hint}"
            ))
        }
    }
}

/// Layer (b): may a program in `ctx` call the kfunc `k`? One load with the context's
/// setup; a module kfunc's call names its module's BTF through `fd_array` (index 1).
pub fn answer(p: &Prober<'_>, ctx: AttachContext, k: &KernelKfunc) -> Support {
    let module_btf = match &k.module {
        None => None,
        Some(m) => match crate::sys::kernel_btf_fd(m) {
            Ok(Some(fd)) => Some(fd),
            Ok(None) => {
                return Support::unknown(
                    format!(
                        "{} is a kfunc of module {m}, whose BTF is not loaded",
                        k.name
                    ),
                    None,
                );
            }
            Err(e) => {
                return Support::unknown(
                    format!("the BTF of module {m} cannot be opened ({e})"),
                    Some(Evidence::probe("BPF_BTF_GET_FD_BY_ID").with_errno(e)),
                );
            }
        },
    };
    let setup = match p.setup(ctx) {
        Ok(s) => s,
        Err(s) => return s,
    };
    let fd_array: Vec<i32> = match &module_btf {
        Some(fd) => vec![0, std::os::fd::AsRawFd::as_raw_fd(fd)],
        None => Vec::new(),
    };
    let insns = insn::call_kfunc_program(k.btf_id, if module_btf.is_some() { 1 } else { 0 });
    let mut load = setup.load(&insns);
    load.fd_array = &fd_array;
    let what = format!(
        "BPF_PROG_LOAD {}: call {} (kfunc, BTF id {}); r0 = 0; exit",
        setup.desc, k.name, k.btf_id
    );
    let scope = match ctx {
        AttachContext::Default(_) => Scope::ProgramType,
        _ => Scope::Context,
    };
    let classify = |r: Result<(), &crate::sys::LoadError>, what: &str| {
        classify_kfunc_load(r, what, &k.name, scope)
    };
    load_and_classify(&load, &what, &classify).0
}

impl crate::Features {
    /// The kernel's BTF and the kfunc index from one read of vmlinux's BTF (a full run
    /// needs both: a second 5-6 MB read would stay in the process's memory). With
    /// `side_by_side` (one cold question) the two walks over its types run on two threads,
    /// and the system facts are read meanwhile: together they are most of a cold `has
    /// kfunc … --prog-type` (~2 ms each on 6.18's BTF). A full run reads the system facts
    /// on another thread already, and walks both here so that the allocator reuses the
    /// read's memory (another thread's arena would not).
    pub(crate) fn read_btf_and_kfuncs(&self, side_by_side: bool) {
        if self.kfunc_index.get().is_some() || self.btf_was_read() {
            self.btf();
            let _ = self.kfunc_index();
            return;
        }
        let path = Path::new(BTF_DIR).join("vmlinux");
        match crate::sys::read_file(&path) {
            Ok(blob) => {
                let index = || KfuncIndex::from_vmlinux(&blob, Path::new(BTF_DIR));
                let (btf, index) = if side_by_side {
                    crate::kernel::side_by_side(
                        0,
                        || {
                            let _ = self.sys();
                            crate::btf::KernelBtf::parse(&blob)
                        },
                        index,
                    )
                } else {
                    (crate::btf::KernelBtf::parse(&blob), index())
                };
                self.set_btf(btf.map_err(|what| {
                    crate::btf::BtfError::Malformed {
                        path: path.display().to_string(),
                        what,
                    }
                    .to_string()
                }));
                let _ = self.kfunc_index.set(index);
            }
            Err(_) => {
                self.btf();
            }
        }
    }

    pub(crate) fn kfunc_index(&self) -> Result<&KfuncIndex, &str> {
        self.kfunc_index
            .get_or_init(KfuncIndex::read)
            .as_ref()
            .map_err(String::as_str)
    }

    /// An assumed or cached answer for `key`, if there is one (kfuncs' [`Self::settled`]).
    fn kfunc_settled(&self, key: &(Option<AttachContext>, String)) -> Option<crate::Answer> {
        if let Some(a) = crate::assume::assumed_kfunc(&self.options().assumptions, key.0, &key.1) {
            return Some(a);
        }
        if let Some(a) = self.kfunc_answers.read().expect("cache lock").get(key) {
            return Some(a.clone());
        }
        let a = self.disk_answer(&cache_key(key.0, &key.1))?;
        self.kfunc_answers
            .write()
            .expect("cache lock")
            .insert(key.clone(), a.clone());
        Some(a)
    }

    fn kfunc_keep(&self, key: (Option<AttachContext>, String), a: &crate::Answer) {
        if a.cacheable() {
            self.kfunc_answers
                .write()
                .expect("cache lock")
                .insert(key, a.clone());
        }
    }

    /// Layer (a) for the kfunc `name`: read from BTF, which any caller may read.
    pub fn kernel_kfunc(&self, name: &str) -> crate::Answer {
        let key = (None, name.to_string());
        if let Some(a) = self.kfunc_settled(&key) {
            return a;
        }
        // A cold start reads the system facts (for the release) and walks BTF for the
        // index side by side.
        if self.kfunc_index.get().is_none() {
            crate::kernel::side_by_side(
                0,
                || {
                    let _ = self.sys();
                },
                || {
                    let _ = self.kfunc_index();
                },
            );
        }
        let release = crate::FeatureSource::release(self);
        let a = crate::Answer::probed(kernel_answer(self.kfunc_index(), release, name));
        self.kfunc_keep(key, &a);
        a
    }

    /// Layer (b): may a program in `ctx` call the kfunc `name`?
    pub fn kfunc_in(&self, ctx: AttachContext, name: &str) -> crate::Answer {
        let key = (Some(ctx), name.to_string());
        if let Some(a) = self.kfunc_settled(&key) {
            return a;
        }
        // Layer (b) needs the kernel's BTF (attach targets) and the kfunc index: one read.
        self.read_btf_and_kfuncs(true);
        let kernel = self.kernel_kfunc(name);
        if !kernel.is_supported() {
            return kernel;
        }
        if let Some(why) = self.inferred_reason() {
            return crate::Answer::with_origin(
                Support::unknown(
                    format!("the kernel has {name}, but no program can be loaded here to ask"),
                    None,
                ),
                crate::Origin::Inferred,
                why,
            );
        }
        let release = crate::FeatureSource::release(self);
        let Found::Kfunc(k) = self
            .kfunc_index()
            .map(|i| i.find(name, release))
            .unwrap_or(Found::Absent)
        else {
            return kernel;
        };
        let fixtures = crate::prober::Fixtures::default();
        let prober = Prober {
            btf: self.btf(),
            release,
            fixtures: &fixtures,
        };
        let a = self.with_token(|| crate::Answer::probed(answer(&prober, ctx, &k)));
        self.kfunc_keep(key, &a);
        a
    }

    /// Layer (b) within a full run: the run's fixtures, and the context's base answer
    /// (where the context itself cannot load, no kfunc load is tried: its answer says why).
    pub(crate) fn kfunc_with(
        &self,
        ctx: AttachContext,
        k: &KernelKfunc,
        fixtures: &crate::prober::Fixtures,
        base: &crate::Answer,
    ) -> crate::Answer {
        let key = (Some(ctx), k.name.clone());
        if let Some(a) = self.kfunc_settled(&key) {
            return a;
        }
        if !base.is_supported() {
            return crate::Answer {
                support: Support::unknown(
                    format!(
                        "{} cannot be loaded here, so no kfunc call can be asked",
                        ctx.name()
                    ),
                    None,
                ),
                origin: base.origin,
                origin_reason: base.origin_reason.clone(),
            };
        }
        if let Some(why) = self.inferred_reason() {
            return crate::Answer::with_origin(
                Support::unknown("no program can be loaded here to ask", None),
                crate::Origin::Inferred,
                why,
            );
        }
        let prober = Prober {
            btf: self.btf(),
            release: crate::FeatureSource::release(self),
            fixtures,
        };
        let a = self.with_token(|| crate::Answer::probed(answer(&prober, ctx, k)));
        self.kfunc_keep(key, &a);
        a
    }

    /// Every kfunc this kernel has (layer a), or why BTF could not be read.
    pub fn kernel_kfuncs(&self) -> Result<Vec<KernelKfunc>, String> {
        let release = crate::FeatureSource::release(self);
        self.kfunc_index()
            .map(|i| i.kfuncs(release))
            .map_err(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::{BtfBuilder, KFUNC_TAG};

    fn release(r: &str) -> KernelRelease {
        KernelRelease::parse(r).unwrap()
    }

    /// A vmlinux blob with `funcs`, the first `tagged` of them tagged `bpf_kfunc`.
    fn vmlinux(funcs: &[&str], tagged: usize) -> Vec<u8> {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[]);
        for (i, f) in funcs.iter().enumerate() {
            let id = b.func(f, proto);
            if i < tagged {
                b.decl_tag(KFUNC_TAG, id);
            }
        }
        b.build()
    }

    #[test]
    fn an_untagged_kernel_is_read_through_the_table() {
        let idx = KfuncIndex::from_blobs(&vmlinux(&["bpf_task_from_pid", "tcp_connect"], 0), &[])
            .unwrap();
        assert!(!idx.tags_kfuncs());
        let new = release("6.12.0");
        let old = release("6.1.0");
        let a = kernel_answer(Ok(&idx), Some(&new), "bpf_task_from_pid");
        assert!(a.is_supported(), "{a}");
        assert!(a.to_string().contains("table"), "{a}");
        // The table's release is an oracle: the same function below it is no kfunc.
        let a = kernel_answer(Ok(&idx), Some(&old), "bpf_task_from_pid");
        assert!(a.is_unsupported(), "{a}");
        // A function the table does not know cannot be told on an untagged kernel.
        assert!(kernel_answer(Ok(&idx), Some(&new), "tcp_connect").is_unknown());
    }

    #[test]
    fn a_tagged_kernel_is_read_through_its_tags() {
        let idx = KfuncIndex::from_blobs(
            &vmlinux(&["bpf_task_from_pid", "bpf_new_thing", "tcp_connect"], 2),
            &[],
        )
        .unwrap();
        let r = release("6.18.0");
        for k in ["bpf_task_from_pid", "bpf_new_thing"] {
            assert!(kernel_answer(Ok(&idx), Some(&r), k).is_supported(), "{k}");
        }
        let a = kernel_answer(Ok(&idx), Some(&r), "tcp_connect");
        assert!(
            a.is_unsupported() && a.to_string().contains("not a kfunc"),
            "{a}"
        );
        let a = kernel_answer(Ok(&idx), Some(&r), "bpf_new_thinng");
        assert!(a.to_string().contains("did you mean bpf_new_thing"), "{a}");
        let names: Vec<String> = idx.kfuncs(Some(&r)).into_iter().map(|k| k.name).collect();
        assert!(names.contains(&"bpf_new_thing".to_string()), "{names:?}");
        assert!(!names.contains(&"tcp_connect".to_string()));
    }

    #[test]
    fn a_tagging_kernel_is_believed_over_the_table() {
        // 7.2: the `_impl` twin of a kfunc with implicit arguments stays in BTF, untagged
        // and without an address, beside the tagged kfunc.
        let idx = KfuncIndex::from_blobs(
            &vmlinux(&["bpf_wq_set_callback", "bpf_wq_set_callback_impl"], 1),
            &[],
        )
        .unwrap();
        let r = release("7.2.13");
        let a = kernel_answer(Ok(&idx), Some(&r), "bpf_wq_set_callback_impl");
        assert!(
            a.is_unsupported() && a.to_string().contains("tags every kfunc"),
            "{a}"
        );
        let names: Vec<String> = idx.kfuncs(Some(&r)).into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["bpf_wq_set_callback"]);
        // Without tags (6.1), the table still decides.
        let idx = KfuncIndex::from_blobs(&vmlinux(&["bpf_wq_set_callback_impl"], 0), &[]).unwrap();
        let a = kernel_answer(
            Ok(&idx),
            Some(&release("6.10.0")),
            "bpf_wq_set_callback_impl",
        );
        assert!(a.is_supported(), "{a}");
    }

    #[test]
    fn unreadable_btf_and_unloaded_modules_are_unknown() {
        let a = kernel_answer(Err("no such file"), None, "bpf_task_from_pid");
        assert!(
            a.is_unknown() && a.to_string().contains("no such file"),
            "{a}"
        );
        let idx = KfuncIndex::from_blobs(&vmlinux(&["tcp_connect"], 0), &[]).unwrap();
        if let Some(row) = KFUNCS.iter().find(|r| r.module.is_some()) {
            let a = kernel_answer(Ok(&idx), None, row.name);
            assert!(
                a.is_unknown() && a.to_string().contains("not loaded"),
                "{a}"
            );
        }
        // A module blob that does not parse hides nothing else.
        let idx = KfuncIndex::from_blobs(
            &vmlinux(&["tcp_connect"], 0),
            &[("broken".to_string(), b"garbage".to_vec())],
        )
        .unwrap();
        assert_eq!(idx.modules().count(), 0);
    }

    #[test]
    fn the_running_kernel_and_its_modules() {
        let test = "the_running_kernel_and_its_modules";
        let idx = match KfuncIndex::read() {
            Ok(i) => i,
            Err(e) => {
                crate::testing::skip(test, &format!("no kernel BTF: {e}"));
                return;
            }
        };
        let module_files = std::fs::read_dir(BTF_DIR)
            .map(|d| d.count().saturating_sub(1))
            .unwrap_or(0);
        // Every module blob parses as split BTF on top of vmlinux.
        assert_eq!(idx.modules().count(), module_files);
        let r = KernelRelease::current().ok();
        let all = idx.kfuncs(r.as_ref());
        if idx.tags_kfuncs() {
            assert!(all.len() > 50, "{}", all.len());
        }
    }
}
