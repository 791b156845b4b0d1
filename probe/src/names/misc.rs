//! Miscellaneous features by name: verifier and ISA capabilities, BTF kinds, global data,
//! links, multi-attach, and the attach contexts tracers need, each with the release it
//! appeared in. Their probes are in [`crate::misc`].
use serde::{Deserialize, Serialize};

use super::{Since, UnknownName, closest};

macro_rules! misc_features {
    ($($variant:ident => $name:literal, $since:expr, $doc:literal;)*) => {
        /// A miscellaneous feature.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Misc { $(#[doc = $doc] $variant,)* }

        impl Misc {
            /// Every feature, in report order.
            pub const ALL: &'static [Misc] = &[$(Misc::$variant,)*];
            /// The key's name: `bounded_loops`, `ringbuf`, ….
            pub fn name(self) -> &'static str {
                match self { $(Misc::$variant => $name,)* }
            }
            /// The release that added it, for inferred answers.
            pub fn since(self) -> Since {
                match self { $(Misc::$variant => $since,)* }
            }
            /// One line for humans, as in the report.
            pub fn description(self) -> &'static str {
                match self { $(Misc::$variant => $doc,)* }
            }
        }
    };
}

misc_features! {
    BoundedLoops => "bounded_loops", Since::new(5, 3), "the verifier accepts bounded loops (backward jumps)";
    LargeInsnLimit => "large_insn_limit", Since::new(5, 2), "programs of up to 1M instructions";
    IsaV2 => "isa_v2", Since::new(4, 14), "ISA v2: JLT/JLE/JSLT/JSLE jumps";
    IsaV3 => "isa_v3", Since::new(5, 1), "ISA v3: 32-bit jumps (JMP32)";
    IsaV4 => "isa_v4", Since::new(6, 6), "ISA v4: sign-extending moves and loads, bswap, gotol, sdiv";
    Btf => "btf", Since::new(4, 18), "BTF can be loaded";
    BtfFunc => "btf_func", Since::new(5, 0), "BTF kinds FUNC and FUNC_PROTO";
    BtfDatasec => "btf_datasec", Since::new(5, 2), "BTF kinds VAR and DATASEC";
    BtfFloat => "btf_float", Since::new(5, 13), "BTF kind FLOAT";
    BtfDeclTag => "btf_decl_tag", Since::new(5, 16), "BTF kind DECL_TAG";
    BtfTypeTag => "btf_type_tag", Since::new(5, 17), "BTF kind TYPE_TAG";
    BtfEnum64 => "btf_enum64", Since::new(6, 0), "BTF kind ENUM64";
    GlobalData => "global_data", Since::new(5, 2), "direct map-value access (global variables)";
    RodataFrozen => "rodata_frozen", Since::new(5, 2), "read-only, frozen maps (const volatile .rodata rewritten before load)";
    RingBuffer => "ringbuf", Since::new(5, 8), "BPF ring buffer maps";
    BpfCookie => "bpf_cookie", Since::new(5, 15), "bpf_get_attach_cookie in kprobes";
    LinkCgroup => "link_cgroup", Since::new(5, 7), "bpf_link for cgroup programs";
    LinkPerfEvent => "link_perf_event", Since::new(5, 15), "bpf_link for kprobe/uprobe/tracepoint perf events";
    LinkNetfilter => "link_netfilter", Since::new(6, 4), "bpf_link for netfilter programs";
    LinkTcx => "link_tcx", Since::new(6, 6), "tcx: bpf_link for tc programs";
    KprobeMulti => "kprobe_multi", Since::new(5, 18), "kprobe_multi links (many kprobes in one link)";
    UprobeMulti => "uprobe_multi", Since::new(6, 6), "uprobe_multi links";
    FentryBpfProg => "fentry_bpf_prog", Since::new(5, 5), "fentry/fexit attached to a BPF program (attach_prog_fd)";
    FentryKprobeProg => "fentry_kprobe_prog", Since::new(5, 5), "fentry/fexit attached to a kprobe BPF program";
    FentrySleepable => "fentry_sleepable", Since::new(5, 10), "sleepable fentry programs (fentry.s) on a kernel function that may sleep";
    LsmSleepable => "lsm_sleepable", Since::new(5, 10), "sleepable LSM programs (lsm.s) on a sleepable hook";
}

impl std::str::FromStr for Misc {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase();
        Misc::ALL
            .iter()
            .copied()
            .find(|m| m.name() == n)
            .ok_or_else(|| UnknownName {
                what: "feature",
                given: s.to_string(),
                suggestion: closest(&n, Misc::ALL.iter().map(|m| m.name())),
            })
    }
}

impl Serialize for Misc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Misc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
