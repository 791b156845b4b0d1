//! `Features`: the cached answers for this kernel.
//!
//! Questions are lazy and cached per process: one question costs one load the first time
//! and nothing after (only conclusive probed answers are cached; see
//! [`Answer::cacheable`]). [`Features::probe_all`] (in [`crate::run`]) answers everything
//! for the report. Users can force answers ([`Assumption`]); when probing is impossible
//! every answer is inferred from the version table and marked so.
use std::{
    collections::HashMap,
    sync::{OnceLock, RwLock},
};

use once_cell::sync::Lazy;

use crate::{
    assume::{self, Assumption},
    btf::KernelBtf,
    cache::{CacheError, DiskCache, Identity},
    helpers, inferred,
    kernel::{SystemInfo, raise_memlock_if_charged},
    key::FeatureKey,
    map_types, misc,
    names::{AttachContext, Helper, MapType, Misc, ProgramType},
    prober::{Fixtures, Prober},
    prog_types,
    source::FeatureSource,
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// Options of a [`Features`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Also probe the helpers that write to the kernel log ([`helpers::NOISY`]).
    pub full: bool,
    /// Answers forced by the user; the last one that covers a question wins.
    pub assumptions: Vec<Assumption>,
    /// Also ask, in the full run, every vmlinux kfunc in every context (layer b): a kfunc
    /// load costs ~50 µs (the verifier looks the function up in kallsyms), so this is a
    /// few hundred milliseconds more; `has kfunc` asks one pair without it.
    pub kfuncs: bool,
    /// Also read the attach-point sources (BTF, available_filter_functions, kallsyms,
    /// the kprobe blacklist) in the full run, and count what each mechanism can trace.
    pub attach_points: bool,
    /// Probing threads for [`Features::probe_all`]; 0 = two per core.
    pub threads: usize,
    /// Answer from the version table even where probing is possible (for tests).
    pub force_inferred: Option<String>,
    /// An on-disk cache of answers for this kernel boot (see [`crate::cache`]): read at
    /// start, written by [`Features::save_cache`].
    pub cache: Option<std::path::PathBuf>,
    /// A BPF token (6.9) every probe load carries: answers are what the token allows
    /// ([`crate::token`]). Not with a disk cache, whose identity has no token.
    pub token: Option<std::sync::Arc<crate::token::Token>>,
}

/// The live answers for this kernel. Everything is read lazily: a question answered from
/// the caches reads neither the kernel config nor its BTF.
pub struct Features {
    system: OnceLock<SystemInfo>,
    btf: OnceLock<(Option<KernelBtf>, Option<String>)>,
    inferred: OnceLock<Option<String>>,
    options: Options,
    cache: RwLock<HashMap<FeatureKey, Answer>>,
    /// Refusals that hold for the boot and these privileges (EPERM, lockdown), kept only
    /// for the disk cache, whose identity includes both.
    refusals: RwLock<HashMap<FeatureKey, Answer>>,
    disk: Option<DiskCache>,
    disk_error: Option<String>,
    /// The kernel's functions in BTF, for kfuncs (see [`crate::kfuncs`]).
    pub(crate) kfunc_index: OnceLock<Result<crate::kfuncs::KfuncIndex, String>>,
    /// Conclusive kfunc answers, by context (`None`: the kernel's layer) and name.
    pub(crate) kfunc_answers: RwLock<HashMap<(Option<AttachContext>, String), Answer>>,
}

static GLOBAL: Lazy<Features> = Lazy::new(|| Features::new(Options::default()));

impl Options {
    /// The defaults plus the assumptions of [`crate::ASSUME_ENV`]: the library reads no
    /// environment variable unless a program asks it to, here.
    pub fn from_env() -> Result<Options, String> {
        Ok(Options {
            assumptions: assume::from_env()?,
            ..Default::default()
        })
    }
}

impl Features {
    /// The process-wide instance, with default options (no assumptions: for those from
    /// the environment, build one with [`Options::from_env`]).
    pub fn get() -> &'static Features {
        &GLOBAL
    }

    /// A new instance with its own cache. Nothing is read until a question needs it,
    /// except the disk cache when one is configured.
    ///
    /// The first question that reads the system also raises RLIMIT_MEMLOCK to unlimited on
    /// kernels before 5.11, which charge BPF memory to it (as libbpf and aya do); the
    /// report says what it did (`system.memlock.raised`).
    pub fn new(options: Options) -> Features {
        let (disk, disk_error) = match &options.cache {
            None => (None, None),
            Some(_) if options.token.is_some() => (
                None,
                Some(
                    "not used with a BPF token: the cache is per kernel boot and privileges, \
                     not per token"
                        .to_string(),
                ),
            ),
            Some(path) => match DiskCache::load(path, &Identity::current()) {
                Ok(d) => (Some(d), None),
                Err(CacheError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    (None, None)
                }
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Features {
            system: OnceLock::new(),
            btf: OnceLock::new(),
            inferred: OnceLock::new(),
            options,
            cache: RwLock::new(HashMap::new()),
            refusals: RwLock::new(HashMap::new()),
            disk,
            disk_error,
            kfunc_index: OnceLock::new(),
            kfunc_answers: RwLock::new(HashMap::new()),
        }
    }

    /// A `Features` on a described system (for unit tests with the fake syscall door).
    #[cfg(test)]
    pub(crate) fn on(system: SystemInfo, btf: Option<KernelBtf>, options: Options) -> Features {
        let f = Features::new(options);
        let _ = f.system.set(system);
        let _ = f.btf.set((btf, None));
        f
    }

    pub(crate) fn sys(&self) -> &SystemInfo {
        self.system.get_or_init(|| {
            let mut s = SystemInfo::read();
            if let Some(r) = &s.release {
                s.memlock = raise_memlock_if_charged(r);
            }
            s
        })
    }
    fn btf_pair(&self) -> &(Option<KernelBtf>, Option<String>) {
        self.btf.get_or_init(|| match KernelBtf::from_sys_fs() {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e.to_string())),
        })
    }
    /// Whether the kernel's BTF was read (or its read failed) already.
    pub(crate) fn btf_was_read(&self) -> bool {
        self.btf.get().is_some()
    }
    /// Sets the kernel's BTF from a read made elsewhere (see `read_btf_and_kfuncs`);
    /// a BTF already read stays.
    pub(crate) fn set_btf(&self, btf: Result<KernelBtf, String>) {
        let _ = self.btf.set(match btf {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        });
    }
    /// The kernel's BTF (/sys/kernel/btf/vmlinux), parsed on first use; `None` when it
    /// could not be read ([`Self::btf_error`] says why).
    pub fn btf(&self) -> Option<&KernelBtf> {
        self.btf_pair().0.as_ref()
    }
    /// Why the kernel's BTF could not be read, if it could not.
    pub fn btf_error(&self) -> Option<&str> {
        self.btf_pair().1.as_deref()
    }
    /// Why answers are inferred rather than probed, if they are.
    pub fn inferred_reason(&self) -> Option<&str> {
        self.inferred
            .get_or_init(|| {
                // A token is there to be probed through, whatever the caller's own
                // capabilities: what it does not allow is refused, and says so.
                self.options.force_inferred.clone().or_else(|| {
                    self.options
                        .token
                        .is_none()
                        .then(|| self.sys().why_probing_is_impossible())
                        .flatten()
                })
            })
            .as_deref()
    }
    /// The disk cache's answer for `key` (text form), if there is one.
    pub(crate) fn disk_answer(&self, key: &str) -> Option<Answer> {
        self.disk.as_ref()?.get(key)
    }
    /// Why the configured disk cache was not used, if it was not.
    pub fn cache_problem(&self) -> Option<&str> {
        self.disk_error.as_deref()
    }
    /// How many answers the disk cache held at start.
    pub fn cached_on_disk(&self) -> usize {
        self.disk.as_ref().map_or(0, DiskCache::len)
    }
    /// What this instance was created with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Writes every conclusive answer known so far, the refusals that hold for the boot,
    /// and those already on disk, to the configured cache file. Without
    /// [`Options::cache`], does nothing.
    pub fn save_cache(&self) -> Result<(), CacheError> {
        let Some(path) = &self.options.cache else {
            return Ok(());
        };
        let mem = self.cache.read().expect("cache lock");
        let mut all: HashMap<String, Answer> = self
            .disk
            .iter()
            .flat_map(|d| d.entries())
            .filter_map(|(k, v)| serde_json::from_str(v).ok().map(|a| (k.to_string(), a)))
            .collect();
        let refusals = self.refusals.read().expect("cache lock");
        for (k, a) in refusals.iter().chain(mem.iter()) {
            all.insert(k.to_string(), a.clone());
        }
        for ((context, name), a) in self.kfunc_answers.read().expect("cache lock").iter() {
            all.insert(crate::kfuncs::cache_key(*context, name), a.clone());
        }
        crate::cache::save(
            path,
            &Identity::current(),
            all.iter().map(|(k, a)| (k.clone(), a)),
        )
    }

    /// The answer to one question: assumed, cached, or computed (with what it depends on
    /// answered first, sharing one set of fixtures).
    fn answer(&self, k: FeatureKey) -> Answer {
        let fixtures = Fixtures::default();
        self.answer_in(k, &fixtures)
    }

    fn answer_in(&self, k: FeatureKey, fixtures: &Fixtures) -> Answer {
        if let Some(a) = self.settled(k) {
            return a;
        }
        let deps = match k {
            FeatureKey::Helper(h, Some(ctx)) => Some(helpers::Deps {
                kernel: self.answer_in(FeatureKey::Helper(h, None), fixtures),
                base: self.answer_in(helpers::base_key(ctx), fixtures),
            }),
            _ => None,
        };
        self.computed(k, fixtures, deps.as_ref())
    }

    /// Computes an answer and keeps it as the caches allow.
    pub(crate) fn computed(
        &self,
        k: FeatureKey,
        fixtures: &Fixtures,
        deps: Option<&helpers::Deps>,
    ) -> Answer {
        let a = self.compute(k, fixtures, deps);
        self.remember(k, &a);
        a
    }

    /// An assumed or cached answer, if there is one.
    pub(crate) fn settled(&self, k: FeatureKey) -> Option<Answer> {
        assume::assumed(&self.options.assumptions, k).or_else(|| self.cached(k))
    }

    pub(crate) fn remember(&self, k: FeatureKey, a: &Answer) {
        if a.cacheable() {
            self.cache.write().expect("cache lock").insert(k, a.clone());
        } else if a.origin == Origin::Probed && a.is_policy_refusal() {
            // Only refusals that hold for the whole boot and these privileges (the disk
            // cache's identity) may be saved: EPERM and lockdown. EMFILE, ENOMEM and the
            // like pass; caching them would keep a wrong answer for the whole boot.
            self.refusals
                .write()
                .expect("cache lock")
                .insert(k, a.clone());
        }
    }

    /// From memory, else from the disk cache (then kept in memory).
    fn cached(&self, k: FeatureKey) -> Option<Answer> {
        if let Some(a) = self.cache.read().expect("cache lock").get(&k) {
            return Some(a.clone());
        }
        let a = self.disk.as_ref()?.get(&k.to_string())?;
        self.cache.write().expect("cache lock").insert(k, a.clone());
        Some(a)
    }

    /// Whether the kernel's BTF enum has a member of this value. By value, not name:
    /// enumerators get renamed (`BPF_MAP_TYPE_CGROUP_STORAGE` became
    /// `BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED` in 6.2), values never change.
    fn btf_knows(&self, enum_name: &str, value: u32) -> Option<bool> {
        let members = self.btf()?.enum_members(enum_name)?;
        Some(
            members
                .iter()
                .any(|m| m.value == value as i64 && !m.name.starts_with("__")),
        )
    }

    fn not_in_btf(enum_name: &str, member: &str) -> Support {
        Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(format!("/sys/kernel/btf/vmlinux enum {enum_name}"))
                .with_detail(format!(
                    "the kernel's BTF has no {member} (no member of its value)"
                )),
        }
    }

    /// Computes one answer. `deps` carries what a (context, helper) question depends on.
    /// With a token, every load carries it, and a refusal outside what it allows says so.
    pub(crate) fn compute(
        &self,
        k: FeatureKey,
        fixtures: &Fixtures,
        deps: Option<&helpers::Deps>,
    ) -> Answer {
        let a = self.with_token(|| self.compute_as_caller(k, fixtures, deps));
        match self.options.token.as_deref() {
            Some(token) => outside_token(token, k, a),
            None => a,
        }
    }

    /// Runs `f` with every load it makes carrying this instance's token, if it has one.
    pub(crate) fn with_token<R>(&self, f: impl FnOnce() -> R) -> R {
        let token = self.options.token.as_deref().map(crate::token::Token::fd);
        crate::sys::token::with(token, f)
    }

    fn compute_as_caller(
        &self,
        k: FeatureKey,
        fixtures: &Fixtures,
        deps: Option<&helpers::Deps>,
    ) -> Answer {
        if let FeatureKey::Helper(h, None) = k {
            return self.kernel_helper(h);
        }
        let sys = self.sys();
        let release = sys.release.as_ref();
        if let Some(why) = self.inferred_reason() {
            // Unprivileged BPF allowed: what an unprivileged caller may load is probed for
            // real; the rest, and whatever it is refused, is inferred.
            if sys.unprivileged_bpf_allowed()
                && unprivileged_may_try(k)
                && let Some(a) = unprivileged(k, self.probe_key(k, fixtures, deps))
            {
                return a;
            }
            let key = k.to_string();
            if let Some(a) = inferred::by_config(&key, sys, why)
                .or_else(|| inferred::by_config_before(&key, sys, why))
                .or_else(|| inferred::by_btf(&k, self.btf(), why))
            {
                return a;
            }
            return match k {
                FeatureKey::ProgType(t) => inferred::by_version(t.since(), release, why, t.name()),
                FeatureKey::MapType(t) => inferred::by_version(t.since(), release, why, t.name()),
                FeatureKey::Misc(m) => {
                    inferred::by_version(Some(m.since()), release, why, m.name())
                }
                FeatureKey::Helper(h, c) => inferred::helper(
                    c.unwrap_or(AttachContext::KPROBE),
                    h,
                    release,
                    self.btf(),
                    why,
                ),
            };
        }
        self.probe_key(k, fixtures, deps)
    }

    /// Probes one key on this kernel.
    fn probe_key(
        &self,
        k: FeatureKey,
        fixtures: &Fixtures,
        deps: Option<&helpers::Deps>,
    ) -> Answer {
        let sys = self.sys();
        let prober = Prober {
            btf: self.btf(),
            release: sys.release.as_ref(),
            fixtures,
        };
        let support = match k {
            FeatureKey::ProgType(t) => match self.btf_knows("bpf_prog_type", t.0) {
                Some(false) => Self::not_in_btf("bpf_prog_type", &t.uapi_name()),
                _ => prog_types::probe(&prober, t),
            },
            FeatureKey::MapType(t) => match self.btf_knows("bpf_map_type", t.0) {
                Some(false) => Self::not_in_btf("bpf_map_type", &t.uapi_name()),
                _ => map_types::probe(t),
            },
            FeatureKey::Misc(m) => misc::probe(&prober, m),
            FeatureKey::Helper(h, ctx) => {
                let ctx = ctx.expect("the kernel-level question is answered above");
                let Some(deps) = deps else {
                    unreachable!("a helper question is computed with its dependencies")
                };
                let rules = helpers::Rules {
                    full: self.options.full,
                    lockdown: sys.lockdown,
                    lockdown_source: sys.lockdown_source.as_deref().unwrap_or("?"),
                };
                return helpers::answer(&prober, ctx, h, deps, &rules);
            }
        };
        Answer::probed(support)
    }

    /// Layer (a): from BTF, no privileges needed; without BTF, from the version table.
    fn kernel_helper(&self, h: Helper) -> Answer {
        let member = format!("BPF_FUNC_{}", h.short_name());
        match self.btf_knows("bpf_func_id", h.id()) {
            Some(true) => Answer::probed(Support::Supported {
                evidence: Some(
                    Evidence::probe("/sys/kernel/btf/vmlinux enum bpf_func_id")
                        .with_detail(format!("{member} = {}", h.id())),
                ),
            }),
            Some(false) => Answer::probed(Self::not_in_btf("bpf_func_id", &member)),
            None => inferred::by_version(
                h.since(),
                self.sys().release.as_ref(),
                self.btf_error().unwrap_or("no kernel BTF"),
                h.name(),
            ),
        }
    }
}

/// A refusal (EPERM) of a load the token does not allow, reworded to say so: without the
/// token's permission the kernel checks the caller's own capabilities, which in a user
/// namespace are none.
fn outside_token(token: &crate::token::Token, k: FeatureKey, a: Answer) -> Answer {
    use crate::token::Load;
    let load = match k {
        FeatureKey::ProgType(t) | FeatureKey::Helper(_, Some(AttachContext::Default(t))) => {
            Load::Prog {
                prog_type: t,
                attach_type: 0,
            }
        }
        FeatureKey::MapType(t) => Load::Map(t),
        _ => return a,
    };
    match (&a.support, token.allowed.refuses(&load)) {
        (Support::Unknown { evidence, .. }, Some(why)) if a.is_policy_refusal() => Answer {
            support: Support::unknown(
                format!(
                    "{why} of {}: outside the token the load needs this caller's own \
                     CAP_BPF, and was refused",
                    token.path().display()
                ),
                evidence.clone(),
            ),
            ..a
        },
        _ => a,
    }
}

/// The program types an unprivileged caller may load (`bpf_prog_load`: everything else
/// needs CAP_BPF), when kernel.unprivileged_bpf_disabled is 0.
pub const UNPRIVILEGED_PROG_TYPES: [ProgramType; 2] =
    [ProgramType::SOCKET_FILTER, ProgramType::CGROUP_SKB];

/// Whether an unprivileged caller may try to answer `k` by a load: its program types, the
/// helpers in them, and map types (each checks its own capability: EPERM then infers).
/// Not misc features: the verifier holds an unprivileged caller to stricter rules (no
/// back-edges, 4096 instructions), so its refusal would read as the kernel's.
fn unprivileged_may_try(k: FeatureKey) -> bool {
    match k {
        FeatureKey::ProgType(t) => UNPRIVILEGED_PROG_TYPES.contains(&t),
        FeatureKey::MapType(_) => true,
        FeatureKey::Misc(_) => false,
        FeatureKey::Helper(_, Some(AttachContext::Default(t))) => {
            UNPRIVILEGED_PROG_TYPES.contains(&t)
        }
        FeatureKey::Helper(..) => false,
    }
}

/// An unprivileged caller's probed answer, as far as it holds for the kernel: `None` when
/// the caller was refused (EPERM: infer instead). A helper refused in a type is unknown,
/// not "not supported": `bpf_base_func_proto` offers some helpers only to CAP_BPF or
/// CAP_PERFMON callers, so the refusal may be the caller's, not the kernel's.
fn unprivileged(k: FeatureKey, a: Answer) -> Option<Answer> {
    if a.is_policy_refusal() {
        return None;
    }
    match (&k, &a.support) {
        (
            FeatureKey::Helper(..),
            Support::Unsupported {
                scope: Scope::ProgramType | Scope::Context,
                evidence,
            },
        ) => Some(Answer::probed(Support::unknown(
            "refused to this unprivileged caller, which may be the caller's lack of CAP_BPF \
             or CAP_PERFMON (helpers offered only to them) rather than the kernel's: run as \
             root to tell",
            Some(evidence.clone()),
        ))),
        _ => Some(a),
    }
}

impl FeatureSource for Features {
    fn system(&self) -> &SystemInfo {
        self.sys()
    }
    fn program_type(&self, t: ProgramType) -> Answer {
        self.answer(FeatureKey::ProgType(t))
    }
    fn map_type(&self, t: MapType) -> Answer {
        self.answer(FeatureKey::MapType(t))
    }
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer {
        self.answer(FeatureKey::Helper(h, Some(ctx)))
    }
    fn misc(&self, m: Misc) -> Answer {
        self.answer(FeatureKey::Misc(m))
    }
    fn kernel_has_helper(&self, h: Helper) -> Answer {
        self.answer(FeatureKey::Helper(h, None))
    }
    fn kernel_has_kfunc(&self, name: &str) -> Answer {
        self.kernel_kfunc(name)
    }
    fn kfunc(&self, ctx: AttachContext, name: &str) -> Answer {
        self.kfunc_in(ctx, name)
    }
}
