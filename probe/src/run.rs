//! The full run: every question, in parallel over the machine's cores, into a [`Report`].
use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use crate::{
    features::Features,
    helpers,
    key::FeatureKey,
    names::{AttachContext, Helper, MapType, Misc, ProgramType},
    prober::Fixtures,
    report::{Entry, HelperRow, KernelHelper, MiscEntry, Report, SCHEMA_VERSION},
    support::Answer,
};

/// Beyond this, more threads only queue on the kernel's locks.
const MAX_THREADS: usize = 64;

impl Features {
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
                // The kfunc index reads vmlinux's BTF again: in the same thread, so the
                // allocator reuses the first read's memory (another thread's arena would
                // not).
                s.spawn(|| self.read_btf_and_kfuncs(false));
            }
            self.sys();
        });
        let fixtures = Fixtures::default();
        // Two threads per core: a load spends much of its time on kernel locks (vmalloc,
        // the JIT's allocator), and a second thread per core keeps the core busy meanwhile
        // (measured: 4 threads beat 2 on 2 cores; see the bench).
        let threads = match self.options().threads {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(MAX_THREADS)
        .min(fits.unwrap_or(MAX_THREADS));
        let run = |k: FeatureKey, deps: Option<&helpers::Deps>| -> Answer {
            self.settled(k)
                .unwrap_or_else(|| self.computed(k, &fixtures, deps))
        };

        let mut phase1: Vec<FeatureKey> = ProgramType::all().map(FeatureKey::ProgType).collect();
        phase1.extend(MapType::all().map(FeatureKey::MapType));
        phase1.extend(Misc::ALL.iter().map(|m| FeatureKey::Misc(*m)));
        phase1.extend(Helper::all().map(|h| FeatureKey::Helper(h, None)));
        let answers1 = par_map(&phase1, threads, |k| run(*k, None));
        let first: HashMap<FeatureKey, Answer> = phase1.iter().copied().zip(answers1).collect();

        // The helpers to probe: those the kernel's BTF lists (all of ours without BTF).
        let kernel_helpers: Vec<Helper> = Helper::all()
            .filter(|h| {
                !first[&FeatureKey::Helper(*h, None)]
                    .support
                    .is_unsupported()
            })
            .collect();
        let contexts: Vec<AttachContext> = AttachContext::all().collect();
        let phase2: Vec<(AttachContext, Helper)> = contexts
            .iter()
            .flat_map(|c| kernel_helpers.iter().map(move |h| (*c, *h)))
            .collect();
        let answers2 = par_map(&phase2, threads, |(c, h)| {
            let deps = helpers::Deps {
                kernel: first[&FeatureKey::Helper(*h, None)].clone(),
                base: first[&helpers::base_key(*c)].clone(),
            };
            run(FeatureKey::Helper(*h, Some(*c)), Some(&deps))
        });
        // Layer (b) for kfuncs: every vmlinux kfunc in every context (module kfuncs are
        // asked one by one, `has kfunc`: each needs its module's BTF opened).
        let kfuncs: Vec<crate::kfuncs::KernelKfunc> = if self.options().kfuncs {
            self.kernel_kfuncs()
                .unwrap_or_default()
                .into_iter()
                .filter(|k| k.module.is_none())
                .collect()
        } else {
            Vec::new()
        };
        let phase3: Vec<(AttachContext, usize)> = contexts
            .iter()
            .flat_map(|c| (0..kfuncs.len()).map(move |i| (*c, i)))
            .collect();
        let answers3 = par_map(&phase3, threads, |(c, i)| {
            self.kfunc_with(*c, &kfuncs[*i], &fixtures, &first[&helpers::base_key(*c)])
        });
        drop(fixtures);
        let mut kfunc_rows: Vec<crate::report::KfuncRow> = contexts
            .iter()
            .map(|c| crate::report::KfuncRow {
                context: *c,
                answers: Default::default(),
            })
            .collect();
        for ((c, i), a) in phase3.iter().zip(answers3) {
            let row = kfunc_rows
                .iter_mut()
                .find(|r| r.context == *c)
                .expect("row");
            row.answers.insert(kfuncs[*i].name.clone(), a);
        }
        kfunc_rows.retain(|r| !r.answers.is_empty());

        let mut helpers: Vec<HelperRow> = contexts
            .iter()
            .map(|c| HelperRow {
                context: *c,
                answers: Default::default(),
            })
            .collect();
        for ((c, h), a) in phase2.iter().zip(answers2) {
            let row = helpers.iter_mut().find(|r| r.context == *c).expect("row");
            row.answers.insert(h.name().to_string(), a);
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
                    answer: first[&FeatureKey::ProgType(t)].clone(),
                })
                .collect(),
            map_types: MapType::all()
                .map(|t| Entry {
                    name: t,
                    since: t.since(),
                    answer: first[&FeatureKey::MapType(t)].clone(),
                })
                .collect(),
            kernel_helpers: Helper::all()
                .map(|h| KernelHelper {
                    id: h.id(),
                    name: h.name().to_string(),
                    since: h.since(),
                    answer: first[&FeatureKey::Helper(h, None)].clone(),
                })
                .collect(),
            helpers,
            misc: Misc::ALL
                .iter()
                .map(|m| MiscEntry {
                    name: *m,
                    since: m.since(),
                    description: m.description().to_string(),
                    answer: first[&FeatureKey::Misc(*m)].clone(),
                })
                .collect(),
            kernel_kfuncs: Some(match self.kernel_kfuncs() {
                Ok(list) => crate::report::KernelKfuncs {
                    tags: list.iter().any(|k| k.tagged),
                    kfuncs: list
                        .into_iter()
                        .map(|k| crate::report::KernelKfuncEntry {
                            name: k.name,
                            btf_id: k.btf_id,
                            module: k.module,
                            tagged: k.tagged,
                            since: k.since,
                        })
                        .collect(),
                    error: None,
                },
                Err(e) => crate::report::KernelKfuncs {
                    error: Some(e),
                    ..Default::default()
                },
            }),
            kfuncs: kfunc_rows,
            attach_points: self
                .options()
                .attach_points
                .then(|| crate::attach_points::AttachPoints::read_for(self).summary()),
            token: self.options().token.as_ref().map(|t| t.report()),
            full: self.options().full,
            threads,
            bpf_syscalls: crate::sys::syscall_count() - loads_before,
            seconds: started.elapsed().as_secs_f64(),
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
    fn par_map_keeps_order() {
        let v: Vec<u32> = (0..1000).collect();
        assert_eq!(
            par_map(&v, 4, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        // More threads than items (--threads 100000): no more threads than work.
        let ids = std::sync::Mutex::new(std::collections::HashSet::new());
        let r = par_map(&[1, 2, 3], 100_000, |x| {
            ids.lock().unwrap().insert(std::thread::current().id());
            *x
        });
        assert_eq!(r, vec![1, 2, 3]);
        assert!(ids.lock().unwrap().len() <= 3);
        assert!(par_map(&[] as &[u8], 8, |x| *x).is_empty());
    }
}
