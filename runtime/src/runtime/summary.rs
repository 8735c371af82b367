//! The summary record: the exit handler's drain of running and waiting pods, then per site its
//! calls, samples, started tests and skips, with the admission's figures (`flush_summary`, the
//! periodic `ticker` and the exit handler write it).

use super::{in_pod, started_ns, Runtime, DRAIN_NS};
use crate::journal;
use crate::sys;
use std::sync::atomic::Ordering;

impl Runtime {
    /// Wait up to `INVITE_DRAIN_MS` for running and waiting pods to finish; the wait is
    /// charged to the budget. The host's end begins here: a pod still running past it is not
    /// given the grace again once the host is gone (`Runtime::host_gone_until`).
    pub fn drain(&self) {
        let drain_ms = self.config.as_ref().map_or(0, |c| c.drain_ms);
        let ledger = self.ledger();
        let start = ledger.host_ended(sys::monotonic_ns());
        let deadline = start + drain_ms * 1_000_000;
        while (ledger.running() > 0 || ledger.queue().waiting() > 0)
            && sys::monotonic_ns() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let waited = sys::monotonic_ns() - start;
        DRAIN_NS.store(waited, Ordering::Relaxed);
        ledger.charge(waited);
    }

    pub fn write_summary(&self) {
        let _inside = crate::inside::Inside::enter();
        if in_pod() || self.journal().is_none() {
            return;
        }
        let never_called = crate::registry::SiteStats::default();
        let sites = crate::registry::every_site();
        // The running threads' counts are read with no thread exiting meanwhile (`counts`), and
        // without allocating under that lock: a thread may wait for it inside the allocator.
        let mut calls = Vec::with_capacity(sites.len());
        let threads_running = {
            let reading = crate::counts::Reading::start();
            calls.extend(sites.iter().map(|(site, st)| {
                let folded = st.map_or(0, |st| st.calls.load(Ordering::Relaxed));
                crate::counts::calls(&reading, site, folded)
            }));
            reading.threads_running()
        };
        let rows: Vec<journal::SiteSummary> = sites
            .into_iter()
            .zip(calls)
            .map(|((site, st), calls)| (site, st.unwrap_or(&never_called), calls))
            .map(|(site, st, calls)| journal::SiteSummary {
                site: format!("{}:{}", site.file(), site.line),
                function: crate::site::qualified(site.function(), st.owner.get().copied()),
                test: site.test().to_string(),
                calls,
                sampled: st.sampled.load(Ordering::Relaxed),
                started: st.started.load(Ordering::Relaxed),
                skipped_concurrency: st.skipped_concurrency.load(Ordering::Relaxed),
                skipped_budget: st.skipped_budget.load(Ordering::Relaxed),
                skipped_in_pod: st.skipped_in_pod.load(Ordering::Relaxed),
                skipped_cgroup: st.skipped_cgroup.load(Ordering::Relaxed),
                skipped_pod_cpu: st.skipped_pod_cpu.load(Ordering::Relaxed),
                skipped_queue: st.skipped_queue.load(Ordering::Relaxed),
                queued: st.queued.load(Ordering::Relaxed),
            })
            .collect();
        let lost = self.ledger().lost();
        let settings: Vec<(&str, String)> = self.config.as_ref().map_or_else(Vec::new, |c| {
            vec![
                (
                    "INVITE_MAX_OVERHEAD",
                    c.max_overhead
                        .map_or_else(|| "off".to_string(), |p| p.to_string()),
                ),
                ("INVITE_MAX_CONCURRENT", c.max_concurrent.to_string()),
                (
                    "INVITE_MAX_POD_CPU",
                    c.max_pod_cpu
                        .map_or_else(|| "off".to_string(), |p| p.to_string()),
                ),
                ("INVITE_MAX_QUEUE", c.max_queue.to_string()),
            ]
        });
        let ledger = self.ledger();
        let admission = journal::Admission {
            elapsed_ns: sys::monotonic_ns().saturating_sub(started_ns()),
            host_ns: ledger.host_cost_ns(),
            drain_ns: DRAIN_NS.load(Ordering::Relaxed),
            pod_cpu_ns: ledger.pod_cpu_ns(),
            cpus: crate::cpus::machine(),
            queue_max: self.config.as_ref().map_or(0, |c| c.max_queue),
            queued: rows.iter().map(|r| r.queued).sum(),
            displaced: ledger.displaced(),
            waiting: ledger.queue().waiting(),
        };
        let line = journal::summary_line(
            journal::now_ns(),
            &self.host,
            sys::getpid(),
            journal::Totals {
                lost,
                threads_running,
            },
            &settings,
            &admission,
            &rows,
        );
        self.write_line(&line);
    }
}
