//! The `loop` need: "run this body N times", the choice bpftrace makes for its range loops.
//! Best first: the open-coded iterator kfuncs `bpf_iter_num_new/next/destroy` (6.4), the
//! `bpf_loop` helper (5.17), a bounded loop (5.3), a loop the compiler unrolls (any
//! kernel). The answers are those of the program type the loop runs in.
//!
//! `ebpf/src/bpf/loop_sum.bpf.c` applies it: every path in one object, the one to run
//! chosen before load by a frozen `const volatile`; its kfuncs are weak, and the loader
//! ([`crate::object`]) poisons their calls where the kernel lacks them, as libbpf does.
use probe::{AttachContext, FeatureSource, Helper, Misc, ProgramType};

use crate::strategy::{self, Choice, Need, Refusal, StrategyError, runnable_if};

/// The need, for [`strategy::choose`].
pub struct Loop;

/// The strategies of [`Loop`], best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoopStrategy {
    /// `bpf_iter_num_new/next/destroy` (6.4): no callback, no bound the verifier must
    /// prove, any count.
    IterNum,
    /// `bpf_loop` (5.17): a callback run N times, verified once.
    BpfLoop,
    /// A bounded loop (5.3): the verifier walks every iteration, so N stays small.
    BoundedLoop,
    /// Unrolled by the compiler: any kernel, a bound known at compile time.
    Unrolled,
}

impl LoopStrategy {
    /// The value of `loop_strategy` in loop_sum.bpf.c for this strategy.
    pub fn index(self) -> u32 {
        match self {
            LoopStrategy::IterNum => 0,
            LoopStrategy::BpfLoop => 1,
            LoopStrategy::BoundedLoop => 2,
            LoopStrategy::Unrolled => 3,
        }
    }
}

impl LoopStrategy {
    /// The program of loop_sum.bpf.c that runs it: `bpf_loop`'s callback (a function
    /// pointer, 5.13) is kept out of the program older kernels load.
    pub fn program(self) -> &'static str {
        match self {
            LoopStrategy::BpfLoop => "loop_sum_callback",
            _ => "loop_sum",
        }
    }
}

impl std::str::FromStr for LoopStrategy {
    type Err = StrategyError;
    /// `iter_num`, `bpf_loop`, `bounded_loop` or `unrolled`.
    fn from_str(s: &str) -> Result<Self, StrategyError> {
        strategy::parse::<Loop>(s, "API")
    }
}

impl Need for Loop {
    const NAME: &'static str = "loop";
    const DESCRIPTION: &'static str = "run a body N times in a tc program";
    type Strategy = LoopStrategy;
    fn candidates() -> &'static [LoopStrategy] {
        &[
            LoopStrategy::IterNum,
            LoopStrategy::BpfLoop,
            LoopStrategy::BoundedLoop,
            LoopStrategy::Unrolled,
        ]
    }
    fn name(s: LoopStrategy) -> &'static str {
        match s {
            LoopStrategy::IterNum => "iter_num",
            LoopStrategy::BpfLoop => "bpf_loop",
            LoopStrategy::BoundedLoop => "bounded_loop",
            LoopStrategy::Unrolled => "unrolled",
        }
    }
    /// The report's question: a tc program (loop_sum's type).
    fn runnable(src: &dyn FeatureSource, s: LoopStrategy) -> Result<String, Refusal> {
        Loop::runnable_in(src, s, AttachContext::Default(ProgramType::SCHED_CLS))
    }
}

impl Loop {
    /// Whether `s` can run in a program of `ctx`.
    pub fn runnable_in(
        src: &dyn FeatureSource,
        s: LoopStrategy,
        ctx: AttachContext,
    ) -> Result<String, Refusal> {
        let on = ctx.name();
        match s {
            LoopStrategy::IterNum => {
                // All three are one set, registered together: asking for one is asking for
                // the set.
                let a = src.kfunc(ctx, "bpf_iter_num_new");
                runnable_if(a, &format!("kfunc bpf_iter_num_new in {on}"))
            }
            LoopStrategy::BpfLoop => runnable_if(
                src.helper(
                    ctx,
                    Helper(aya_obj::generated::bpf_func_id::BPF_FUNC_loop as u32),
                ),
                &format!("bpf_loop in {on}"),
            ),
            LoopStrategy::BoundedLoop => runnable_if(src.misc(Misc::BoundedLoops), "bounded loops"),
            LoopStrategy::Unrolled => Ok(
                "any kernel: the compiler unrolls a loop whose bound it knows (no backward jump)"
                    .into(),
            ),
        }
    }
}

/// The strategy for a loop in a program of type `t`.
pub fn choose_for(
    src: &dyn FeatureSource,
    t: ProgramType,
    force: Option<&str>,
) -> Result<Choice<LoopStrategy>, StrategyError> {
    let ctx = AttachContext::Default(t);
    strategy::choose_by::<Loop>(force, |s| Loop::runnable_in(src, s, ctx))
}
