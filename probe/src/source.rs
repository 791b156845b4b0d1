//! [`FeatureSource`]: the one trait the strategy layer reads answers through. The live
//! [`crate::Features`] probes; a recorded [`crate::Report`] replays a real kernel's
//! answers, so strategy code is testable without root.
use crate::{
    kernel::{KernelRelease, SystemInfo},
    names::{AttachContext, Helper, MapType, Misc, ProgramType},
    support::Answer,
};

/// The answer of a source that holds no kfunc answers (a report recorded before kfuncs
/// were probed).
fn no_kfunc_answers(name: &str) -> Answer {
    Answer::probed(crate::support::Support::unknown(
        format!("{name}: this source holds no kfunc answers"),
        None,
    ))
}

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

    /// Does the kernel have the kfunc `name` (its BTF, or the table of known kfuncs)?
    fn kernel_has_kfunc(&self, name: &str) -> Answer {
        no_kfunc_answers(name)
    }
    /// May a program in this context call the kfunc `name`?
    fn kfunc(&self, _ctx: AttachContext, name: &str) -> Answer {
        no_kfunc_answers(name)
    }

    /// The kernel's release, when it parses.
    fn release(&self) -> Option<&KernelRelease> {
        self.system().release.as_ref()
    }
}
