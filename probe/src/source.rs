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
