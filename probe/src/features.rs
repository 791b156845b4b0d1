//! `Features`: the cached answers, and the trait the strategy layer reads them through.
//!
//! Questions are lazy and cached per process: one question costs one load the first time
//! and nothing after (only conclusive probed answers are cached; see
//! [`Answer::cacheable`]). [`Features::probe_all`] answers everything for the report, in
//! parallel over the machine's cores. Users can force answers ([`Assumption`]); when
//! probing is impossible every answer is inferred from the version table and marked so.
use std::{
    collections::HashMap,
    fmt,
    sync::{
        OnceLock, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use once_cell::sync::Lazy;

use crate::{
    btf::KernelBtf,
    cache::{CacheError, DiskCache, Identity},
    helpers, inferred,
    kernel::{KernelRelease, SystemInfo},
    map_types,
    misc::{self, Misc},
    names::{AttachContext, Helper, MapType, ProgramType, UnknownName},
    prober::{Fixtures, Prober},
    prog_types,
    report::{Entry, HelperRow, KernelHelper, MiscEntry, Report, SCHEMA_VERSION},
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// The environment variable of assumptions: `helper:bpf_get_func_ip@tracing/fentry_bpf_prog=no,misc:ringbuf=yes`.
pub const ASSUME_ENV: &str = "BPF_FEATURES_ASSUME";

/// Beyond this, more threads only queue on the kernel's locks.
const MAX_THREADS: usize = 64;

/// How a skipped noisy helper's answer starts; such answers are never cached.
const SKIPPED_NOISY: &str = "not probed by default";

/// One question, by name: `prog_type:kprobe`, `map_type:ringbuf`, `misc:bounded_loops`,
/// `helper:bpf_get_func_ip` (every context) or `helper:bpf_get_func_ip@kprobe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureKey {
    ProgType(ProgramType),
    MapType(MapType),
    Helper(Helper, Option<AttachContext>),
    Misc(Misc),
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureKey::ProgType(t) => write!(f, "prog_type:{t}"),
            FeatureKey::MapType(t) => write!(f, "map_type:{t}"),
            FeatureKey::Helper(h, None) => write!(f, "helper:{h}"),
            FeatureKey::Helper(h, Some(c)) => write!(f, "helper:{h}@{c}"),
            FeatureKey::Misc(m) => write!(f, "misc:{}", m.name()),
        }
    }
}

/// A malformed assumption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssumeError {
    #[error(
        "assumption '{0}' is not KIND:NAME=yes|no (KIND is prog_type, map_type, helper or misc; \
         e.g. helper:bpf_get_func_ip@kprobe=no)"
    )]
    Syntax(String),
    #[error("assumption '{0}': {1}")]
    Name(String, UnknownName),
}

impl std::str::FromStr for FeatureKey {
    type Err = AssumeError;
    fn from_str(s: &str) -> Result<Self, AssumeError> {
        let (kind, name) = s
            .split_once(':')
            .ok_or_else(|| AssumeError::Syntax(s.into()))?;
        let named = |e: UnknownName| AssumeError::Name(s.into(), e);
        Ok(match kind.trim() {
            "prog_type" => FeatureKey::ProgType(name.parse().map_err(named)?),
            "map_type" => FeatureKey::MapType(name.parse().map_err(named)?),
            "misc" => FeatureKey::Misc(name.parse().map_err(named)?),
            "helper" => match name.split_once('@') {
                Some((h, c)) => {
                    FeatureKey::Helper(h.parse().map_err(named)?, Some(c.parse().map_err(named)?))
                }
                None => FeatureKey::Helper(name.parse().map_err(named)?, None),
            },
            _ => return Err(AssumeError::Syntax(s.into())),
        })
    }
}

/// A user's override of one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumption {
    pub key: FeatureKey,
    pub supported: bool,
    /// Where it came from: `--assume`, `BPF_FEATURES_ASSUME`, `api`.
    pub source: String,
}

/// Parses `KEY=yes|no` items separated by commas or whitespace.
pub fn parse_assumptions(spec: &str, source: &str) -> Result<Vec<Assumption>, AssumeError> {
    spec.split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| AssumeError::Syntax(item.into()))?;
            let supported = match v.trim().to_ascii_lowercase().as_str() {
                "yes" | "y" | "on" | "true" | "1" => true,
                "no" | "n" | "off" | "false" | "0" => false,
                _ => return Err(AssumeError::Syntax(item.into())),
            };
            Ok(Assumption {
                key: k.trim().parse()?,
                supported,
                source: source.to_string(),
            })
        })
        .collect()
}

/// Where answers come from. The live [`Features`] probes; a recorded [`Report`] replays a
/// real kernel's answers, so strategy code is testable without root.
pub trait FeatureSource: Send + Sync {
    fn system(&self) -> &SystemInfo;
    fn program_type(&self, t: ProgramType) -> Answer;
    fn map_type(&self, t: MapType) -> Answer;
    /// May a program in this context call the helper?
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer;
    /// Does the kernel know the helper at all (its BTF `enum bpf_func_id`)?
    fn kernel_has_helper(&self, h: Helper) -> Answer;
    fn misc(&self, m: Misc) -> Answer;

    fn release(&self) -> Option<&KernelRelease> {
        self.system().release.as_ref()
    }
}

/// Options of a [`Features`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Also probe the helpers that write to the kernel log ([`helpers::NOISY`]).
    pub full: bool,
    pub assumptions: Vec<Assumption>,
    /// Probing threads for [`Features::probe_all`]; 0 = two per core.
    pub threads: usize,
    /// Answer from the version table even where probing is possible (for tests).
    pub force_inferred: Option<String>,
    /// An on-disk cache of answers for this kernel boot (see [`crate::cache`]): read at
    /// start, written by [`Features::save_cache`].
    pub cache: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Query {
    Prog(ProgramType),
    Map(MapType),
    Helper(AttachContext, Helper),
    Misc(Misc),
}

/// The live answers for this kernel. Everything is read lazily: a question answered from
/// the caches reads neither the kernel config nor its BTF.
pub struct Features {
    system: OnceLock<SystemInfo>,
    btf: OnceLock<(Option<KernelBtf>, Option<String>)>,
    inferred: OnceLock<Option<String>>,
    options: Options,
    cache: RwLock<HashMap<Query, Answer>>,
    /// Inconclusive probed answers, kept only for the disk cache (whose identity includes
    /// the capabilities that make an EPERM an EPERM).
    unknowns: RwLock<HashMap<Query, Answer>>,
    disk: Option<DiskCache>,
    disk_error: Option<String>,
}

/// The question whose answer a context's helper probes depend on.
fn base_query(ctx: AttachContext) -> Query {
    match ctx {
        AttachContext::Default(t) => Query::Prog(t),
        AttachContext::FexitKernelFn => Query::Prog(ProgramType::TRACING),
        AttachContext::KprobeMulti => Query::Misc(Misc::KprobeMulti),
        AttachContext::FentryBpfProg => Query::Misc(Misc::FentryBpfProg),
    }
}

fn query_key(q: Query) -> FeatureKey {
    match q {
        Query::Prog(t) => FeatureKey::ProgType(t),
        Query::Map(t) => FeatureKey::MapType(t),
        Query::Helper(c, h) => FeatureKey::Helper(h, Some(c)),
        Query::Misc(m) => FeatureKey::Misc(m),
    }
}

static GLOBAL: Lazy<Features> = Lazy::new(|| {
    let assumptions = std::env::var_os(ASSUME_ENV)
        .map(|s| match s.into_string() {
            Ok(s) => parse_assumptions(&s, ASSUME_ENV),
            Err(_) => Err(AssumeError::Syntax("(not UTF-8)".into())),
        })
        .map(|r| match r {
            Ok(a) => a,
            Err(e) => {
                eprintln!("bpf-features: ignoring {ASSUME_ENV}: {e}");
                Vec::new()
            }
        })
        .unwrap_or_default();
    Features::new(Options {
        assumptions,
        ..Default::default()
    })
});

impl Features {
    /// The process-wide instance (assumptions from `BPF_FEATURES_ASSUME`), for tracers.
    pub fn get() -> &'static Features {
        &GLOBAL
    }

    /// A new instance with its own cache. Nothing is read until a question needs it,
    /// except the disk cache when one is configured.
    pub fn new(options: Options) -> Features {
        let (disk, disk_error) = match &options.cache {
            None => (None, None),
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
            unknowns: RwLock::new(HashMap::new()),
            disk,
            disk_error,
        }
    }

    fn sys(&self) -> &SystemInfo {
        self.system.get_or_init(SystemInfo::read)
    }
    fn btf_pair(&self) -> &(Option<KernelBtf>, Option<String>) {
        self.btf.get_or_init(|| match KernelBtf::from_sys_fs() {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e.to_string())),
        })
    }
    pub fn btf(&self) -> Option<&KernelBtf> {
        self.btf_pair().0.as_ref()
    }
    pub fn btf_error(&self) -> Option<&str> {
        self.btf_pair().1.as_deref()
    }
    /// Why answers are inferred rather than probed, if they are.
    pub fn inferred_reason(&self) -> Option<&str> {
        self.inferred
            .get_or_init(|| {
                self.options
                    .force_inferred
                    .clone()
                    .or_else(|| self.sys().why_probing_is_impossible())
            })
            .as_deref()
    }
    /// Why the configured disk cache was not used, if it was not.
    pub fn cache_problem(&self) -> Option<&str> {
        self.disk_error.as_deref()
    }
    /// How many answers the disk cache held at start.
    pub fn cached_on_disk(&self) -> usize {
        self.disk.as_ref().map_or(0, DiskCache::len)
    }

    /// Writes every conclusive answer known so far (and those already on disk) to the
    /// configured cache file. Without [`Options::cache`], does nothing.
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
        let unknowns = self.unknowns.read().expect("cache lock");
        for (q, a) in unknowns.iter().chain(mem.iter()) {
            all.insert(query_key(*q).to_string(), a.clone());
        }
        crate::cache::save(
            path,
            &Identity::current(),
            all.iter().map(|(k, a)| (k.clone(), a)),
        )
    }
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn assumed(&self, q: Query) -> Option<Answer> {
        self.assumption(|key| match (key, q) {
            (FeatureKey::ProgType(t), Query::Prog(u)) => t == u,
            (FeatureKey::MapType(t), Query::Map(u)) => t == u,
            (FeatureKey::Misc(m), Query::Misc(n)) => m == n,
            (FeatureKey::Helper(h, None), Query::Helper(_, g)) => h == g,
            (FeatureKey::Helper(h, Some(c)), Query::Helper(d, g)) => h == g && c == d,
            _ => false,
        })
    }

    /// The last assumption whose key `hits`, as an answer.
    fn assumption(&self, hits: impl Fn(FeatureKey) -> bool) -> Option<Answer> {
        let a = self
            .options
            .assumptions
            .iter()
            .rev()
            .find(|a| hits(a.key))?;
        let support = if a.supported {
            Support::supported()
        } else {
            Support::Unsupported {
                scope: Scope::Kernel,
                evidence: Evidence::probe(a.key.to_string()).with_detail("forced off by the user"),
            }
        };
        Some(Answer::with_origin(
            support,
            Origin::Assumed,
            format!(
                "{}={} from {}",
                a.key,
                if a.supported { "yes" } else { "no" },
                a.source
            ),
        ))
    }

    fn answer(&self, q: Query) -> Answer {
        if let Some(a) = self.assumed(q) {
            return a;
        }
        if let Some(a) = self.cached(q) {
            return a;
        }
        let fixtures = Fixtures::default();
        let a = self.compute(q, &fixtures, &|ctx| self.context_base(ctx));
        self.remember(q, &a);
        a
    }

    fn remember(&self, q: Query, a: &Answer) {
        if a.cacheable() {
            self.cache.write().expect("cache lock").insert(q, a.clone());
        } else if a.origin == Origin::Probed && a.is_policy_refusal() {
            // Only refusals that hold for the whole boot and these privileges (the disk
            // cache's identity) may be saved: EPERM and lockdown. EMFILE, ENOMEM and the
            // like pass; caching them would keep a wrong answer for the whole boot.
            self.unknowns
                .write()
                .expect("cache lock")
                .insert(q, a.clone());
        }
    }

    /// From memory, else from the disk cache (then kept in memory).
    fn cached(&self, q: Query) -> Option<Answer> {
        if let Some(a) = self.cache.read().expect("cache lock").get(&q) {
            return Some(a.clone());
        }
        let a = self.disk.as_ref()?.get(&query_key(q).to_string())?;
        self.cache.write().expect("cache lock").insert(q, a.clone());
        Some(a)
    }

    /// What must hold before a helper can be probed in a context.
    fn context_base(&self, ctx: AttachContext) -> Answer {
        self.answer(base_query(ctx))
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

    fn compute(
        &self,
        q: Query,
        fixtures: &Fixtures,
        base: &dyn Fn(AttachContext) -> Answer,
    ) -> Answer {
        let release = self.sys().release.as_ref();
        if let Some(why) = self.inferred_reason() {
            if let Some(a) = inferred::by_config(&query_key(q).to_string(), self.sys(), why) {
                return a;
            }
            return match q {
                Query::Prog(t) => inferred::by_version(t.since(), release, why, &t.name()),
                Query::Map(t) => inferred::by_version(t.since(), release, why, &t.name()),
                Query::Misc(m) => inferred::by_version(Some(m.since()), release, why, m.name()),
                Query::Helper(c, h) => inferred::helper(c, h, release, self.btf(), why),
            };
        }
        let prober = Prober {
            btf: self.btf(),
            release,
            fixtures,
        };
        let support = match q {
            Query::Prog(t) => match self.btf_knows("bpf_prog_type", t.0) {
                Some(false) => Self::not_in_btf("bpf_prog_type", &t.uapi_name()),
                _ => prog_types::probe(&prober, t),
            },
            Query::Map(t) => match self.btf_knows("bpf_map_type", t.0) {
                Some(false) => Self::not_in_btf("bpf_map_type", &t.uapi_name()),
                _ => map_types::probe(t),
            },
            Query::Misc(m) => misc::probe(&prober, m),
            Query::Helper(ctx, h) => return self.compute_helper(&prober, ctx, h, base),
        };
        Answer::probed(support)
    }

    fn compute_helper(
        &self,
        prober: &Prober<'_>,
        ctx: AttachContext,
        h: Helper,
        base: &dyn Fn(AttachContext) -> Answer,
    ) -> Answer {
        // A helper the kernel's BTF does not list: one load for the verifier's own words
        // (`invalid func unknown#173`); the BTF answer stands where nothing can be loaded.
        let kernel = self.kernel_has_helper(h);
        if kernel.support.is_unsupported() {
            if let Ok(setup) = prober.setup(ctx) {
                match helpers::probe_with(&setup, h) {
                    Support::Unsupported { scope, evidence } => {
                        let detail = match &kernel.support {
                            Support::Unsupported { evidence: e, .. } => e.detail.clone(),
                            _ => None,
                        };
                        let evidence = match detail {
                            Some(d) => evidence.with_detail(d),
                            None => evidence,
                        };
                        return Answer::probed(Support::Unsupported { scope, evidence });
                    }
                    s @ Support::Supported { .. } => return Answer::probed(s),
                    Support::Unknown { .. } => {}
                }
            }
            return kernel;
        }
        if ctx == AttachContext::Default(ProgramType::STRUCT_OPS) {
            return Answer::probed(Support::unknown(
                "struct_ops programs only load against a kernel struct_ops type and its map; \
                 helper calls in them are not probed",
                None,
            ));
        }
        let sys = self.sys();
        if let Some(s) = helpers::refused_by_lockdown(
            sys.lockdown_mode(),
            sys.lockdown_source.as_deref().unwrap_or("?"),
            h,
        ) {
            return Answer::probed(s);
        }
        if !self.options.full && helpers::NOISY.contains(&h) {
            return Answer::probed(Support::unknown(
                format!(
                    "{SKIPPED_NOISY}: loading a program that calls it writes to the kernel log \
                     (use --full, or Options::full)"
                ),
                None,
            ));
        }
        let b = base(ctx);
        let is_extra = !matches!(ctx, AttachContext::Default(_));
        let what = if is_extra {
            "attach context"
        } else {
            "program type"
        };
        match &b.support {
            Support::Supported { .. } => {}
            Support::Unsupported { evidence, .. } => {
                return Answer {
                    support: Support::Unsupported {
                        scope: if is_extra {
                            Scope::Context
                        } else {
                            Scope::ProgramType
                        },
                        evidence: evidence.clone().with_detail(format!(
                            "the {what} {} itself is not supported",
                            ctx.name()
                        )),
                    },
                    ..b
                };
            }
            Support::Unknown { reason, evidence } => {
                return Answer {
                    support: Support::Unknown {
                        reason: format!("the {what} {} could not be probed: {reason}", ctx.name()),
                        evidence: evidence.clone(),
                    },
                    ..b
                };
            }
        }
        Answer::probed(helpers::maybe_lockdown(
            sys.lockdown_mode(),
            h,
            helpers::probe(prober, ctx, h),
        ))
    }

    /// Runs every probe (program types, map types, misc, then the full helper matrix) in
    /// parallel and returns the report. Nothing stays loaded afterwards.
    pub fn probe_all(&self) -> Report {
        let started = Instant::now();
        let loads_before = crate::sys::syscall_count();
        // Under an address-space limit (`ulimit -v`) every thread costs an allocator arena:
        // use only the threads that fit, so the report completes instead of aborting.
        let fits = crate::kernel::address_space_limit().map(|l| {
            (l.saturating_sub(crate::kernel::REPORT_ADDRESS_SPACE)
                / crate::kernel::THREAD_ADDRESS_SPACE) as usize
                + 1
        });
        // The kernel's BTF (a 5-6 MB read) and the system facts are independent: read both
        // at once before the probes that need them.
        std::thread::scope(|s| {
            if fits.is_none_or(|n| n > 1) {
                s.spawn(|| self.btf());
            }
            self.sys();
        });
        let fixtures = Fixtures::default();
        // Two threads per core: a load spends much of its time on kernel locks (vmalloc,
        // the JIT's allocator), and a second thread per core keeps the core busy meanwhile
        // (measured: 4 threads beat 2 on 2 cores; see the bench).
        let threads = match self.options.threads {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(MAX_THREADS)
        .min(fits.unwrap_or(MAX_THREADS));
        let no_base =
            |_: AttachContext| -> Answer { unreachable!("phase 1 has no helper queries") };
        let run = |q: Query, base: &dyn Fn(AttachContext) -> Answer| -> Answer {
            if let Some(a) = self.assumed(q) {
                return a;
            }
            if let Some(a) = self.cached(q) {
                return a;
            }
            let a = self.compute(q, &fixtures, base);
            self.remember(q, &a);
            a
        };

        let mut phase1: Vec<Query> = ProgramType::all().map(Query::Prog).collect();
        phase1.extend(MapType::all().map(Query::Map));
        phase1.extend(Misc::ALL.iter().map(|m| Query::Misc(*m)));
        let answers1 = par_map(&phase1, threads, |q| run(*q, &no_base));
        let first: HashMap<Query, Answer> = phase1.iter().copied().zip(answers1).collect();

        let kernel_helpers = self.kernel_helper_list();
        let contexts: Vec<AttachContext> = AttachContext::all().collect();
        let phase2: Vec<Query> = contexts
            .iter()
            .flat_map(|c| kernel_helpers.iter().map(move |h| Query::Helper(*c, *h)))
            .collect();
        let base = |ctx: AttachContext| -> Answer { first[&base_query(ctx)].clone() };
        let answers2 = par_map(&phase2, threads, |q| run(*q, &base));
        drop(fixtures);

        let mut helpers: Vec<HelperRow> = contexts
            .iter()
            .map(|c| HelperRow {
                context: *c,
                answers: Default::default(),
            })
            .collect();
        for (q, a) in phase2.iter().zip(answers2) {
            if let Query::Helper(c, h) = q {
                let row = helpers.iter_mut().find(|r| r.context == *c).expect("row");
                row.answers.insert(h.name(), a);
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            tool: format!("bpf-features {}", env!("CARGO_PKG_VERSION")),
            system: self.sys().clone(),
            inferred: self.inferred_reason().map(str::to_string),
            btf_error: self.btf_error().map(str::to_string),
            program_types: ProgramType::all()
                .map(|t| Entry {
                    name: t,
                    since: t.since(),
                    answer: first[&Query::Prog(t)].clone(),
                })
                .collect(),
            map_types: MapType::all()
                .map(|t| Entry {
                    name: t,
                    since: t.since(),
                    answer: first[&Query::Map(t)].clone(),
                })
                .collect(),
            kernel_helpers: Helper::all()
                .map(|h| KernelHelper {
                    id: h.id(),
                    name: h.name(),
                    since: h.since(),
                    answer: self.kernel_has_helper(h),
                })
                .collect(),
            helpers,
            misc: Misc::ALL
                .iter()
                .map(|m| MiscEntry {
                    name: *m,
                    since: m.since(),
                    description: m.description().to_string(),
                    answer: first[&Query::Misc(*m)].clone(),
                })
                .collect(),
            full: self.options.full,
            threads,
            bpf_syscalls: crate::sys::syscall_count() - loads_before,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// The helpers to probe: those the kernel's BTF lists (all of ours without BTF).
    fn kernel_helper_list(&self) -> Vec<Helper> {
        Helper::all()
            .filter(|h| !self.kernel_has_helper(*h).support.is_unsupported())
            .collect()
    }
}

impl FeatureSource for Features {
    fn system(&self) -> &SystemInfo {
        self.sys()
    }
    fn program_type(&self, t: ProgramType) -> Answer {
        self.answer(Query::Prog(t))
    }
    fn map_type(&self, t: MapType) -> Answer {
        self.answer(Query::Map(t))
    }
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer {
        self.answer(Query::Helper(ctx, h))
    }
    fn misc(&self, m: Misc) -> Answer {
        self.answer(Query::Misc(m))
    }
    /// Layer (a): from BTF, no privileges needed; without BTF, from the version table.
    fn kernel_has_helper(&self, h: Helper) -> Answer {
        // `helper:NAME=…` (no context) speaks of the helper everywhere, the kernel included.
        if let Some(a) = self.assumption(|k| k == FeatureKey::Helper(h, None)) {
            return a;
        }
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
                &h.name(),
            ),
        }
    }
}

/// Maps `f` over `items` on up to `threads` threads (never more than there are items),
/// keeping the order. A thread that cannot be started (a thread or memory limit) is not an
/// error: the threads that did start, or this one, do the work.
fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, f(item)));
        }
        done
    };
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads.clamp(1, items.len().max(1)))
            .map_while(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut all = work();
        for w in workers {
            all.extend(w.join().expect("probe thread panicked"));
        }
        all
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumptions_parse_and_report_bad_input() {
        let a = parse_assumptions(
            "helper:bpf_get_func_ip@tracing/fentry_bpf_prog=no, misc:ringbuf=yes",
            "test",
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].key,
            FeatureKey::Helper(Helper::GET_FUNC_IP, Some(AttachContext::FentryBpfProg))
        );
        assert!(!a[0].supported);
        assert_eq!(a[1].key, FeatureKey::Misc(Misc::RingBuffer));
        assert!(matches!(
            parse_assumptions("ringbuf", "t"),
            Err(AssumeError::Syntax(_))
        ));
        assert!(matches!(
            parse_assumptions("misc:ringbuf=maybe", "t"),
            Err(AssumeError::Syntax(_))
        ));
        let e = parse_assumptions("helper:bpf_get_func_iq=no", "t").unwrap_err();
        assert!(
            e.to_string().contains("did you mean 'bpf_get_func_ip'"),
            "{e}"
        );
        for k in [
            "prog_type:kprobe",
            "map_type:ringbuf",
            "helper:bpf_get_func_ip",
            "helper:bpf_get_func_ip@kprobe",
            "misc:bpf_cookie",
        ] {
            assert_eq!(k.parse::<FeatureKey>().unwrap().to_string(), k);
        }
    }

    #[test]
    fn par_map_keeps_order() {
        let v: Vec<u32> = (0..1000).collect();
        assert_eq!(
            par_map(&v, 4, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        // More threads than items (--threads 100000): no more threads than work.
        let started = AtomicUsize::new(0);
        let ids = std::sync::Mutex::new(std::collections::HashSet::new());
        let r = par_map(&[1, 2, 3], 100_000, |x| {
            started.fetch_add(1, Ordering::Relaxed);
            ids.lock().unwrap().insert(std::thread::current().id());
            *x
        });
        assert_eq!(r, vec![1, 2, 3]);
        assert!(ids.lock().unwrap().len() <= 3);
        assert!(par_map(&[] as &[u8], 8, |x| *x).is_empty());
    }
}
