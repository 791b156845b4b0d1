//! [`FeatureSource`]: the one trait the strategy layer reads answers through. The live
//! [`crate::Features`] probes; a recorded [`crate::Report`] replays a real kernel's
//! answers, so strategy code is testable without root.
use crate::{
    kernel::{KernelRelease, SystemInfo},
    names::{AttachContext, Helper, MapType, Misc, ProgramType},
    support::Answer,
};

/// Where answers come from.
pub trait FeatureSource: Send + Sync {
    /// The kernel and conditions the answers hold for.
    fn system(&self) -> &SystemInfo;
    /// Can a program of this type be loaded?
    fn program_type(&self, t: ProgramType) -> Answer;
    /// Can a map of this type be created?
    fn map_type(&self, t: MapType) -> Answer;
    /// May a program in this context call the helper?
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer;
    /// Does the kernel know the helper at all (its BTF `enum bpf_func_id`)?
    fn kernel_has_helper(&self, h: Helper) -> Answer;
    /// Does the kernel have this miscellaneous feature?
    fn misc(&self, m: Misc) -> Answer;

    /// The kernel's release, when it parses.
    fn release(&self) -> Option<&KernelRelease> {
        self.system().release.as_ref()
    }
}
