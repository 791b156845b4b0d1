//! A tracer's own BPF object, made ready the way aya's `EbpfLoader::load` would make it —
//! globals patched, the object's BTF loaded, CO-RE relocated against the kernel's BTF,
//! maps of every kind created, maps and calls relocated — so that its fentry/fexit
//! programs can be loaded against a BPF program, which aya 0.14 cannot do.
//!
//! Everything is aya-obj's own parsing and relocation; this module adds only what aya-obj
//! 0.3 lacks, and refuses what it cannot do instead of loading a program that would read
//! the wrong thing: extern symbols (ksyms, kfuncs, kconfig), which aya-obj skips and would
//! leave reading 0, are a load error naming the symbol; a CO-RE relocation with no match
//! in the kernel is poisoned (as libbpf does) and its load error says so.
use std::{
    collections::{HashMap, HashSet},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    sync::OnceLock,
};

use aya::maps::{Map, MapData, MapError};
use aya_obj::{
    EbpfSectionKind, Object, ProgramSection,
    btf::{Btf, BtfError, BtfRelocationError},
    generated::{bpf_attach_type, bpf_map_type},
};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
use probe::{
    ProgramType,
    sys::{self, Errno, ProgLoad},
};

mod externs;
mod ksyms_btf;
pub use externs::{Extern, externs};

/// fentry or fexit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// Runs before the traced function.
    Fentry,
    /// Runs after it, with its return value.
    Fexit,
}

/// Why an object could not be made ready, loaded or attached. Each variant keeps the
/// source error (aya-obj's, aya's, the errno and the verifier's words).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// aya-obj could not parse the ELF object.
    #[error("cannot parse the BPF object")]
    Parse(#[source] aya_obj::ParseError),
    /// The ELF symbol table could not be read.
    #[error("cannot read the BPF object's ELF symbols")]
    Elf(#[source] object::read::Error),
    /// An extern variable aya-obj 0.3 does not resolve (kfunc calls are resolved).
    #[error(
        "the object uses the extern variable `{symbol}` (referenced from {section}): ksym \
         and kconfig variables are not resolved by this loader (aya-obj 0.3 has no such \
         relocation), and left unresolved they would read 0; remove the extern or pass the \
         value as a global"
    )]
    Extern {
        /// The symbol's name.
        symbol: String,
        /// The section whose code refers to it.
        section: String,
    },
    /// A kfunc the object calls (not declared `__weak`) is not in the kernel's BTF.
    #[error(
        "the object calls the kfunc `{symbol}`, which this kernel's vmlinux BTF does not \
         have ({why}); declare it `__weak` and guard its calls to load without it"
    )]
    KfuncMissing {
        /// The kfunc.
        symbol: String,
        /// What was looked at.
        why: String,
    },
    /// The BTF of the object's extern kfuncs could not be fixed up.
    #[error("cannot fix up the BTF of the object's extern kfuncs: {0}")]
    KsymsBtf(String),
    /// A global the caller asked to set is missing or not of the expected shape.
    #[error("global `{name}`: {problem}")]
    Global {
        /// The global's name.
        name: String,
        /// What is wrong, and what it should be.
        problem: String,
    },
    /// aya-obj refused to patch the globals.
    #[error("cannot set the object's globals")]
    Patch(#[source] aya_obj::ParseError),
    /// The object's BTF could not be prepared for this kernel.
    #[error("cannot prepare the object's BTF")]
    Btf(#[source] BtfError),
    /// The kernel refused the object's BTF.
    #[error("the kernel refused the object's BTF: {errno}: {log}")]
    BtfLoad {
        /// The errno of BPF_BTF_LOAD.
        errno: Errno,
        /// The kernel's last log line.
        log: String,
    },
    /// The object needs CO-RE but the kernel's BTF is missing.
    #[error(
        "the object has CO-RE relocations but the kernel's BTF cannot be read \
         (/sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y)"
    )]
    NoKernelBtf(#[source] BtfError),
    /// A CO-RE relocation failed outright.
    #[error("CO-RE relocation against the kernel's BTF failed")]
    Core(#[source] BtfRelocationError),
    /// A map could not be created.
    #[error("cannot create map `{name}`")]
    Map {
        /// The map's name.
        name: String,
        /// aya's error, with the errno.
        #[source]
        source: MapError,
    },
    /// A map this loader does not create.
    #[error("map `{name}`: {why}")]
    MapUnsupported {
        /// The map's name.
        name: String,
        /// Why, and what to do.
        why: String,
    },
    /// aya-obj could not relocate a map reference or a call.
    #[error("cannot relocate the object's maps or calls")]
    Relocate(#[source] aya_obj::relocation::EbpfRelocationError),
    /// The program is not in the object.
    #[error("no program `{name}` in the object (it has: {have})")]
    NoProgram {
        /// The name asked for.
        name: String,
        /// The programs the object has.
        have: String,
    },
    /// The program is not fentry/fexit.
    #[error("program `{name}` is in section {section}, not fentry/ or fexit/")]
    NotTracing {
        /// The program.
        name: String,
        /// Its section kind.
        section: String,
    },
    /// The target program's info or BTF could not be read.
    #[error("cannot read the target program's {what}: {errno}")]
    Target {
        /// What was read.
        what: String,
        /// The errno.
        errno: Errno,
    },
    /// The target has no BTF function of that name (or no BTF at all).
    #[error(
        "the target program has no BTF function {0}: fentry on a BPF program needs the \
         target's BTF (load it with its BTF, clang -g)"
    )]
    NoTargetFunc(String),
    /// A CO-RE relocation had no match in the kernel and was poisoned.
    #[error(
        "{program}: a CO-RE relocation has no match in this kernel's BTF (instruction {insn} \
         was poisoned, as libbpf does): the field or type it reads does not exist here"
    )]
    CoreUnresolved {
        /// The program.
        program: String,
        /// The poisoned instruction, as the verifier numbers it.
        insn: String,
    },
    /// The verifier refused the program.
    #[error("the kernel refused to load {program} for {target}: {errno}: {verifier_line}")]
    Load {
        /// The program.
        program: String,
        /// The target, by name and id.
        target: String,
        /// The errno of BPF_PROG_LOAD.
        errno: Errno,
        /// The verifier's last meaningful line.
        verifier_line: String,
        /// The verifier's whole log.
        log: String,
    },
    /// The link could not be created.
    #[error("cannot attach {program}: {errno}")]
    Attach {
        /// The program.
        program: String,
        /// The errno.
        errno: Errno,
    },
}

impl ObjectError {
    /// The errno the kernel returned, when it was the kernel that refused.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ObjectError::BtfLoad { errno, .. }
            | ObjectError::Target { errno, .. }
            | ObjectError::Load { errno, .. }
            | ObjectError::Attach { errno, .. } => Some(*errno),
            ObjectError::Map { source, .. } => map_errno(source),
            _ => None,
        }
    }
}

fn map_errno(e: &MapError) -> Option<Errno> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if let Some(code) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
        {
            return Some(Errno(code));
        }
        cur = s.source();
    }
    None
}

/// The kernel's BTF as aya-obj parses it, read once per process. A failure is not kept: it
/// is read again next time.
fn kernel_btf() -> Result<&'static Btf, BtfError> {
    static BTF: OnceLock<Btf> = OnceLock::new();
    if let Some(b) = BTF.get() {
        return Ok(b);
    }
    let btf = Btf::from_sys_fs()?;
    Ok(BTF.get_or_init(|| btf))
}

/// A global's place in the object: its section and size in bytes.
pub struct GlobalSymbol {
    /// The ELF section (`.rodata` for `const volatile`).
    pub section: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Looks up the global `name` in the object's symbol table.
pub fn global_symbol(bytes: &[u8], name: &str) -> Result<Option<GlobalSymbol>, ObjectError> {
    let file = object::read::File::parse(bytes).map_err(ObjectError::Elf)?;
    for sym in file.symbols() {
        if sym.name() != Ok(name) || sym.is_undefined() {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let section = file
            .section_by_index(index)
            .map_err(ObjectError::Elf)?
            .name()
            .unwrap_or("?")
            .to_string();
        return Ok(Some(GlobalSymbol {
            section,
            size: sym.size(),
        }));
    }
    Ok(None)
}

/// The maps of a loaded object, by name. Shared between loads: a name found here is
/// reused, not created again.
#[derive(Default)]
pub struct Maps {
    maps: HashMap<String, (MapData, aya_obj::Map)>,
}

impl Maps {
    /// The map `name`, if created.
    pub fn get(&self, name: &str) -> Option<&MapData> {
        self.maps.get(name).map(|(d, _)| d)
    }

    /// The names of the maps.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.maps.keys().map(String::as_str)
    }

    /// Takes the map `name` out as aya's typed [`Map`] (then `RingBuf::try_from(map)` and
    /// so on). The programs keep their reference to it.
    pub fn take(&mut self, name: &str) -> Option<Map> {
        self.maps.remove(name).map(|(d, m)| typed_map(d, &m))
    }

    fn insert(&mut self, name: String, map: (MapData, aya_obj::Map)) {
        self.maps.insert(name, map);
    }
}

/// aya's typed map for a map's kind (the table of aya's own `parse_map`).
fn typed_map(map: MapData, def: &aya_obj::Map) -> Map {
    use bpf_map_type::*;
    let Ok(kind) = bpf_map_type::try_from(def.map_type()) else {
        return Map::Unsupported(map);
    };
    match kind {
        BPF_MAP_TYPE_ARRAY => Map::Array(map),
        BPF_MAP_TYPE_PERCPU_ARRAY => Map::PerCpuArray(map),
        BPF_MAP_TYPE_PROG_ARRAY => Map::ProgramArray(map),
        BPF_MAP_TYPE_CGROUP_ARRAY => Map::CgroupArray(map),
        BPF_MAP_TYPE_HASH => Map::HashMap(map),
        BPF_MAP_TYPE_LRU_HASH => Map::LruHashMap(map),
        BPF_MAP_TYPE_PERCPU_HASH => Map::PerCpuHashMap(map),
        BPF_MAP_TYPE_LRU_PERCPU_HASH => Map::PerCpuLruHashMap(map),
        BPF_MAP_TYPE_PERF_EVENT_ARRAY => Map::PerfEventArray(map),
        BPF_MAP_TYPE_RINGBUF => Map::RingBuf(map),
        BPF_MAP_TYPE_SOCKHASH => Map::SockHash(map),
        BPF_MAP_TYPE_SOCKMAP => Map::SockMap(map),
        BPF_MAP_TYPE_BLOOM_FILTER => Map::BloomFilter(map),
        BPF_MAP_TYPE_LPM_TRIE => Map::LpmTrie(map),
        BPF_MAP_TYPE_STACK => Map::Stack(map),
        BPF_MAP_TYPE_STACK_TRACE => Map::StackTraceMap(map),
        BPF_MAP_TYPE_QUEUE => Map::Queue(map),
        BPF_MAP_TYPE_CPUMAP => Map::CpuMap(map),
        BPF_MAP_TYPE_DEVMAP => Map::DevMap(map),
        BPF_MAP_TYPE_DEVMAP_HASH => Map::DevMapHash(map),
        BPF_MAP_TYPE_XSKMAP => Map::XskMap(map),
        BPF_MAP_TYPE_SK_STORAGE => Map::SkStorage(map),
        BPF_MAP_TYPE_INODE_STORAGE => Map::InodeStorage(map),
        BPF_MAP_TYPE_CGRP_STORAGE => Map::CgrpStorage(map),
        _ => Map::Unsupported(map),
    }
}

/// One load of an object: parsed, patched and relocated, its BTF in the kernel and its
/// maps created (or taken from the shared set), ready for its programs to be loaded.
pub struct PreparedObject {
    obj: Object,
    btf_fd: Option<OwnedFd>,
    /// The maps this load created for itself (those not shared).
    pub own_maps: Maps,
}

/// Which of the object's maps a load creates for itself instead of sharing.
pub type OwnMap<'a> = &'a dyn Fn(&str) -> bool;

impl PreparedObject {
    /// Prepares `bytes` with `globals` (name → bytes, each must exist with that size).
    /// Maps for which `own` says true are created for this load only; every other map is
    /// taken from `shared` by name, or created and added to it.
    pub fn prepare(
        bytes: &[u8],
        globals: &[(String, Vec<u8>)],
        shared: &mut Maps,
        own: OwnMap<'_>,
    ) -> Result<Self, ObjectError> {
        let externs = externs(bytes)?;
        if let Some(e) = externs.iter().find(|e| !e.is_call) {
            return Err(ObjectError::Extern {
                symbol: e.symbol.clone(),
                section: e.section.clone(),
            });
        }
        let mut obj = Object::parse(bytes).map_err(ObjectError::Parse)?;
        externs::resolve_kfunc_calls(&mut obj, &externs)?;
        obj.patch_map_data(
            globals
                .iter()
                .map(|(n, v)| (n.as_str(), (v.as_slice(), true)))
                .collect(),
        )
        .map_err(ObjectError::Patch)?;

        // The fixup of extern kfuncs' BTF that aya-obj lacks (libbpf's), before aya-obj's own.
        if externs.iter().any(|e| e.is_call)
            && let Some(btf) = &obj.btf
            && let Some(fixed) =
                ksyms_btf::fix_ksyms(&btf.to_bytes()).map_err(ObjectError::KsymsBtf)?
        {
            obj.btf = Some(Btf::parse(&fixed, obj.endianness).map_err(ObjectError::Btf)?);
        }
        let btf_fd = match aya::features().btf() {
            Some(features) => match obj.fixup_and_sanitize_btf(features) {
                Ok(Some(btf)) => {
                    let mut log = vec![0u8; 1 << 16];
                    Some(sys::btf_load(&btf.to_bytes(), Some(&mut log)).map_err(|e| {
                        ObjectError::BtfLoad {
                            errno: e.errno,
                            log: last_line(&e.log),
                        }
                    })?)
                }
                Ok(None) => None,
                Err(e) => return Err(ObjectError::Btf(e)),
            },
            None => None,
        };
        if obj.has_btf_relocations() {
            let target = kernel_btf().map_err(ObjectError::NoKernelBtf)?;
            obj.relocate_btf(target).map_err(ObjectError::Core)?;
        }

        let mut own_maps = Maps::default();
        let names: Vec<String> = obj.maps.keys().cloned().collect();
        for name in names {
            let map = obj.maps.remove(&name).expect("the name was just listed");
            let is_own = own(&name);
            if !is_own && shared.get(&name).is_some() {
                obj.maps.insert(name, map);
                continue;
            }
            let data = create_map(&name, map.clone(), btf_fd.as_ref().map(|f| f.as_fd()))?;
            obj.maps.insert(name.clone(), map.clone());
            let data = (data, map);
            if is_own {
                own_maps.insert(name, data);
            } else {
                shared.insert(name, data);
            }
        }

        let text: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
        // A shared map's definition is the one it was created from (its section index
        // is the same in every load of the object).
        let fds: Vec<(String, i32, aya_obj::Map)> = obj
            .maps
            .keys()
            .filter_map(|n| {
                let (d, def) = own_maps.maps.get(n).or_else(|| shared.maps.get(n))?;
                Some((n.clone(), d.fd().as_fd().as_raw_fd(), def.clone()))
            })
            .collect();
        obj.relocate_maps(fds.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)), &text)
            .map_err(ObjectError::Relocate)?;
        obj.relocate_calls(&text).map_err(ObjectError::Relocate)?;
        obj.sanitize_functions(aya::features());
        Ok(PreparedObject {
            obj,
            btf_fd,
            own_maps,
        })
    }

    /// Whether the object has the program `name`, and its kind.
    pub fn trace_kind(&self, name: &str) -> Result<TraceKind, ObjectError> {
        let p = self.obj.programs.get(name).ok_or_else(|| {
            let mut have: Vec<&str> = self.obj.programs.keys().map(String::as_str).collect();
            have.sort_unstable();
            ObjectError::NoProgram {
                name: name.into(),
                have: have.join(", "),
            }
        })?;
        match p.section {
            ProgramSection::FEntry { .. } => Ok(TraceKind::Fentry),
            ProgramSection::FExit { .. } => Ok(TraceKind::Fexit),
            ref other => Err(ObjectError::NotTracing {
                name: name.into(),
                section: format!("{other:?}"),
            }),
        }
    }

    /// Loads the program `name` of a kind that needs no attach target at load (a
    /// classifier, socket filter, XDP, kprobe, tracepoint or raw tracepoint program), for
    /// `BPF_PROG_TEST_RUN` or an attach the caller makes.
    pub fn load_program(&self, name: &str) -> Result<OwnedFd, ObjectError> {
        self.load_program_as(name, 0)
    }

    /// [`Self::load_program`] with an expected attach type (a kprobe program loaded for a
    /// kprobe_multi link needs `BPF_TRACE_KPROBE_MULTI`).
    pub fn load_program_as(
        &self,
        name: &str,
        expected_attach_type: u32,
    ) -> Result<OwnedFd, ObjectError> {
        use aya_obj::generated::bpf_prog_type::*;
        let p = self
            .obj
            .programs
            .get(name)
            .ok_or_else(|| ObjectError::NoProgram {
                name: name.into(),
                have: self.program_names(),
            })?;
        let prog_type = match p.section {
            ProgramSection::SchedClassifier => BPF_PROG_TYPE_SCHED_CLS,
            ProgramSection::SocketFilter => BPF_PROG_TYPE_SOCKET_FILTER,
            ProgramSection::Xdp { .. } => BPF_PROG_TYPE_XDP,
            ProgramSection::KProbe | ProgramSection::KRetProbe => BPF_PROG_TYPE_KPROBE,
            ProgramSection::TracePoint => BPF_PROG_TYPE_TRACEPOINT,
            ProgramSection::RawTracePoint => BPF_PROG_TYPE_RAW_TRACEPOINT,
            ref other => {
                return Err(ObjectError::NotTracing {
                    name: name.into(),
                    section: format!("{other:?} (load_program takes programs that need no target)"),
                });
            }
        };
        let func = &self.obj.functions[&p.function_key()];
        let mut load = ProgLoad::new(prog_type as u32, &func.instructions);
        load.license = &p.license;
        load.name = name;
        load.expected_attach_type = expected_attach_type;
        if let Some(btf) = &self.btf_fd {
            load.prog_btf_fd = Some(btf.as_fd());
            load.func_info = &func.func_info.func_info;
            load.line_info = &func.line_info.line_info;
        }
        let mut log = vec![0u8; 1 << 20];
        sys::prog_load(&load, Some(&mut log)).map_err(|e| ObjectError::Load {
            program: name.into(),
            target: "no target".into(),
            errno: e.errno,
            verifier_line: last_line(&e.log),
            log: e.log,
        })
    }

    fn program_names(&self) -> String {
        let mut have: Vec<&str> = self.obj.programs.keys().map(String::as_str).collect();
        have.sort_unstable();
        have.join(", ")
    }

    /// Loads the fentry/fexit program `program` against the function `target_func`
    /// (default: the main function) of the BPF program `target`, and attaches it.
    pub fn attach_to_prog(
        &self,
        program: &str,
        target: BorrowedFd<'_>,
        target_func: Option<&str>,
    ) -> Result<TracingLink, ObjectError> {
        let info = sys::prog_info(target).map_err(|errno| ObjectError::Target {
            what: "info".into(),
            errno,
        })?;
        let (func_id, _) = target_function(target, target_func)?;
        self.load_tracing(
            program,
            func_id,
            Some(target),
            None,
            &format!("{} (id {})", info.name, info.id),
        )
    }

    /// Loads the fentry/fexit program `program` against the kernel function of BTF id
    /// `btf_id` (in vmlinux, or with `module_btf` in that module's BTF, 5.11), and
    /// attaches it.
    pub fn attach_to_kernel_fn(
        &self,
        program: &str,
        btf_id: u32,
        module_btf: Option<BorrowedFd<'_>>,
        function: &str,
    ) -> Result<TracingLink, ObjectError> {
        self.load_tracing(program, btf_id, None, module_btf, function)
    }

    fn load_tracing(
        &self,
        program: &str,
        attach_btf_id: u32,
        target_prog: Option<BorrowedFd<'_>>,
        module_btf: Option<BorrowedFd<'_>>,
        target_name: &str,
    ) -> Result<TracingLink, ObjectError> {
        let kind = self.trace_kind(program)?;
        let p = &self.obj.programs[program];
        let sleepable = matches!(
            p.section,
            ProgramSection::FEntry { sleepable: true } | ProgramSection::FExit { sleepable: true }
        );
        let func = &self.obj.functions[&p.function_key()];
        let mut load = ProgLoad::new(ProgramType::TRACING.0, &func.instructions);
        load.license = &p.license;
        load.expected_attach_type = match kind {
            TraceKind::Fentry => bpf_attach_type::BPF_TRACE_FENTRY,
            TraceKind::Fexit => bpf_attach_type::BPF_TRACE_FEXIT,
        } as u32;
        if sleepable {
            load.prog_flags = aya_obj::generated::BPF_F_SLEEPABLE;
        }
        load.attach_btf_id = attach_btf_id;
        load.attach_prog_fd = target_prog;
        load.attach_btf_obj_fd = module_btf;
        load.name = program;
        if let Some(btf) = &self.btf_fd {
            load.prog_btf_fd = Some(btf.as_fd());
            load.func_info = &func.func_info.func_info;
            load.line_info = &func.line_info.line_info;
        }
        let mut log = vec![0u8; 1 << 20];
        let prog = sys::prog_load(&load, Some(&mut log)).map_err(|e| {
            if let Some(insn) = poisoned_insn(&e.log) {
                return ObjectError::CoreUnresolved {
                    program: program.into(),
                    insn,
                };
            }
            ObjectError::Load {
                program: program.into(),
                target: target_name.to_string(),
                errno: e.errno,
                verifier_line: last_line(&e.log),
                log: e.log,
            }
        })?;
        let link =
            sys::raw_tracepoint_open(prog.as_fd(), None).map_err(|errno| ObjectError::Attach {
                program: program.into(),
                errno,
            })?;
        Ok(TracingLink { kind, prog, link })
    }
}

/// The section kind of a map: data sections (`.rodata`, `.data`, `.bss`) hold globals.
pub fn is_global_data(kind: EbpfSectionKind) -> bool {
    matches!(
        kind,
        EbpfSectionKind::Rodata | EbpfSectionKind::Data | EbpfSectionKind::Bss
    )
}

/// Creates one map as aya's loader would: its size rules, its initial data, frozen when
/// read-only. Pinned and map-in-map definitions are refused, not half-done.
fn create_map(
    name: &str,
    mut map: aya_obj::Map,
    btf_fd: Option<BorrowedFd<'_>>,
) -> Result<MapData, ObjectError> {
    use bpf_map_type::*;
    let kind = bpf_map_type::try_from(map.map_type()).map_err(|_| ObjectError::MapUnsupported {
        name: name.into(),
        why: format!("unknown map type {}", map.map_type()),
    })?;
    if matches!(kind, BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS) {
        return Err(ObjectError::MapUnsupported {
            name: name.into(),
            why: "maps of maps are not created by this loader".into(),
        });
    }
    if !matches!(map.pinning(), aya_obj::maps::PinningType::None) {
        return Err(ObjectError::MapUnsupported {
            name: name.into(),
            why: "pinned maps (LIBBPF_PIN_BY_NAME) are not created by this loader; \
                  maps are shared between the targets of one trace already"
                .into(),
        });
    }
    if kind == BPF_MAP_TYPE_RINGBUF {
        let page = page_size();
        let size = map.max_entries();
        if size != 0 {
            map.set_max_entries(page * size.div_ceil(page).next_power_of_two());
        }
        map.set_value_size(0);
    }
    let initial = map.data().to_vec();
    let read_only = map.section_kind() == EbpfSectionKind::Rodata;
    let data = MapData::create(map, name, btf_fd).map_err(|source| ObjectError::Map {
        name: name.into(),
        source,
    })?;
    let fd = data.fd().as_fd();
    if !initial.is_empty() {
        sys::map_update_elem(fd, &0u32.to_ne_bytes(), &initial, 0).map_err(|e| {
            ObjectError::Map {
                name: name.into(),
                source: MapError::from(std::io::Error::from_raw_os_error(e.0)),
            }
        })?;
    }
    if read_only {
        sys::map_freeze(fd).map_err(|e| ObjectError::Map {
            name: name.into(),
            source: MapError::from(std::io::Error::from_raw_os_error(e.0)),
        })?;
    }
    Ok(data)
}

fn page_size() -> u32 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
}

/// The instruction libbpf and aya-obj poison an unresolved CO-RE relocation with is a call
/// of helper 0xbad2310; the verifier names it `unknown#195896080`.
fn poisoned_insn(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("195896080"))?;
    Some(
        line.split(':')
            .next()
            .filter(|n| n.trim().chars().all(|c| c.is_ascii_digit()) && !n.trim().is_empty())
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| line.trim().to_string()),
    )
}

/// The verifier's last line that says something (not the statistics).
fn last_line(log: &str) -> String {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
        })
        .unwrap_or("")
        .to_string()
}

/// A loaded and attached tracing program; dropping it detaches and unloads.
pub struct TracingLink {
    /// fentry or fexit.
    pub kind: TraceKind,
    /// The program.
    pub prog: OwnedFd,
    /// The link that keeps it attached.
    pub link: OwnedFd,
}

/// The BTF id and name of the function to attach to in `target`: `func` by name, or the
/// main function (`func_info[0]`).
pub fn target_function(
    target: BorrowedFd<'_>,
    func: Option<&str>,
) -> Result<(u32, String), ObjectError> {
    let info = sys::prog_info(target).map_err(|errno| ObjectError::Target {
        what: "info".into(),
        errno,
    })?;
    if info.btf_id == 0 {
        return Err(ObjectError::NoTargetFunc(format!(
            "{} (program {} has no BTF)",
            func.unwrap_or("main"),
            info.name
        )));
    }
    let data = sys::btf_data_by_id(info.btf_id).map_err(|errno| ObjectError::Target {
        what: format!("BTF (id {})", info.btf_id),
        errno,
    })?;
    let btf = probe::btf::KernelBtf::parse_with(&data, true).map_err(|e| {
        ObjectError::NoTargetFunc(format!("{} (its BTF is unreadable: {e})", info.name))
    })?;
    let id = match func {
        Some(name) => btf.func_id(name),
        None => info.main_func_btf_id,
    }
    .ok_or_else(|| ObjectError::NoTargetFunc(func.unwrap_or("main").into()))?;
    let name = btf.func_name(id).unwrap_or(&info.name).to_string();
    Ok((id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_instruction_is_found_in_the_log() {
        let log =
            "0: R1=ctx() R10=fp0\n0: (85) call unknown#195896080\ninvalid func unknown#195896080\n";
        assert_eq!(poisoned_insn(log).as_deref(), Some("0"));
        assert_eq!(poisoned_insn("0: (b7) r0 = 0\n"), None);
    }

    #[test]
    fn last_line_skips_statistics() {
        let log = "R1 invalid mem access 'scalar'\nprocessed 3 insns (limit 1000000)\n\n";
        assert_eq!(last_line(log), "R1 invalid mem access 'scalar'");
    }
}
