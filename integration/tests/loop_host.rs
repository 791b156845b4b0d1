//! The `loop` need end to end (issue 11): the strategy chosen for a tc program, and every
//! runnable strategy, forced, loaded from one object (its kfuncs weak, poisoned where the
//! kernel lacks them) and run with BPF_PROG_TEST_RUN: each must return the same sum.
use fallback::{
    loops::{self, Loop, LoopStrategy},
    object::{Maps, PreparedObject},
    strategy::Need,
};
use probe::{AttachContext, KernelRelease, ProgramType};

const N: u32 = 16;

fn run(strategy: LoopStrategy) -> Result<u32, String> {
    let globals = vec![
        (
            "loop_strategy".to_string(),
            strategy.index().to_ne_bytes().to_vec(),
        ),
        ("n".to_string(), N.to_ne_bytes().to_vec()),
    ];
    let object = PreparedObject::prepare(ebpf::LOOP_SUM, &globals, &mut Maps::default(), &|_| true)
        .map_err(|e| format!("prepare: {e}"))?;
    let prog = object
        .load_program(strategy.program())
        .map_err(|e| format!("load: {e}"))?;
    probe::sys::prog_test_run(std::os::fd::AsFd::as_fd(&prog), &[0u8; 64])
        .map_err(|e| format!("test run: {e}"))
}

#[test]
fn every_runnable_loop_strategy_gives_the_same_sum() {
    let test = "every_runnable_loop_strategy_gives_the_same_sum";
    if integration::need_bpf(test).is_none() {
        return;
    }
    let before = integration::bpf_objects();
    let f = probe::Features::new(probe::Options::default());
    let release = KernelRelease::current().unwrap();
    let ctx = AttachContext::Default(ProgramType::SCHED_CLS);
    let chosen = loops::choose_for(&f, ProgramType::SCHED_CLS, None).unwrap();
    // What each matrix kernel must pick (issue 11): 5.10 a bounded loop, 6.1 bpf_loop,
    // 6.4 and later the iterator kfuncs.
    let expected = if release.at_least(6, 4) {
        LoopStrategy::IterNum
    } else if release.at_least(5, 17) {
        LoopStrategy::BpfLoop
    } else {
        LoopStrategy::BoundedLoop
    };
    assert_eq!(
        chosen.strategy, expected,
        "on {}: {}",
        release.raw, chosen.why
    );
    let want = (0..N).sum::<u32>();
    let mut ran = Vec::new();
    for s in Loop::candidates() {
        match Loop::runnable_in(&f, *s, ctx) {
            Ok(_) => {
                let got = run(*s).unwrap_or_else(|e| panic!("{s:?} on {}: {e}", release.raw));
                assert_eq!(got, want, "{s:?} on {}", release.raw);
                ran.push(Loop::name(*s));
            }
            Err(why) => eprintln!("{test}: {} cannot run here: {why}", Loop::name(*s)),
        }
    }
    eprintln!(
        "{test}: {}: chose {} ({}); ran {ran:?}, each summed 0..{N} to {want}",
        release.raw,
        Loop::name(chosen.strategy),
        chosen.why
    );
    assert!(integration::bpf_objects_left(&before).is_empty());
}
