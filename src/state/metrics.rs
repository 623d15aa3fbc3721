//! The daemon's metrics, served as `GET /metrics` by the status page
//! (`crate::web`) in the OpenMetrics text format, encoded by
//! `prometheus-client`. They live in the shared state (`crate::state`):
//! counters are bumped where things happen — a delivery answered, in the
//! server's one rejection → status mapping; a run finished, from its
//! [`RunEvent::Finished`] on the run event bus ([`count_runs`]), which
//! direct runs reach too once the next daemon replays their spool — and
//! gauges and process figures are read at scrape time, so nothing here wakes
//! the daemon between scrapes.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use tokio::sync::{broadcast, watch};

use crate::run::events::RunEvent;
use crate::run::executor::ProjectStatus;
use crate::store::history::Run;

type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the run duration histogram, in seconds: 1 s to 1 h.
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// The daemon's metrics. One per daemon, in its shared state: the hook
/// listener counts deliveries, [`count_runs`] runs, the status page serves them.
pub(crate) struct Metrics {
    registry: Registry,
    deliveries: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    /// Each host's part of finished fleet runs (docs/fleet.md), by its end.
    host_runs: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    pending: Gauge,
    running: Gauge,
    projects: Gauge,
    /// Serializes scrapes: the gauges are set, then encoded.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "deployd_deliveries",
            "Webhook deliveries to a configured project, by HTTP answer",
            deliveries.clone(),
        );
        let runs = Family::<Labels, Counter>::default();
        registry.register(
            "deployd_runs",
            "Finished runs by project and status",
            runs.clone(),
        );
        let host_runs = Family::<Labels, Counter>::default();
        registry.register(
            "deployd_host_runs",
            "Hosts of finished fleet runs by project, host and the host's status",
            host_runs.clone(),
        );
        let durations = Family::<Labels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "deployd_run_duration",
            "How long finished runs took",
            Unit::Seconds,
            durations.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "deployd_pending_requests",
            "Projects with a request waiting for its turn",
            pending.clone(),
        );
        let running = Gauge::default();
        registry.register("deployd_running_runs", "Runs going on now", running.clone());
        let projects = Gauge::default();
        registry.register(
            "deployd_projects",
            "Projects in the config",
            projects.clone(),
        );
        // A gauge at 1 rather than OpenMetrics' `info` type, which the
        // classic text format (and `promtool check metrics`) does not know.
        let build = Family::<Labels, Gauge>::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
            .set(1);
        registry.register("deployd_build_info", "The running deployd", build);
        registry.register_collector(Box::new(Process));
        Metrics {
            registry,
            deliveries,
            runs,
            host_runs,
            durations,
            pending,
            running,
            projects,
            scrape: Mutex::new(()),
        }
    }

    /// Counts a delivery to `project` answered with `status`.
    pub fn delivery(&self, project: &str, status: u16) {
        self.deliveries
            .get_or_create(&vec![
                ("project", project.to_string()),
                ("answer", status.to_string()),
            ])
            .inc();
    }

    /// Counts a finished run and its duration, and each of its hosts by
    /// the state it ended in.
    pub fn finished(&self, run: &Run) {
        self.runs
            .get_or_create(&vec![
                ("project", run.project().to_string()),
                ("status", run.status.to_string()),
            ])
            .inc();
        for h in &run.hosts {
            self.host_runs
                .get_or_create(&vec![
                    ("project", run.project().to_string()),
                    ("host", h.name.clone()),
                    ("status", h.status.to_string()),
                ])
                .inc();
        }
        if let Some(secs) = run.duration_secs() {
            self.durations
                .get_or_create(&vec![("project", run.project().to_string())])
                .observe(secs);
        }
    }

    /// The text a scrape gets, with the gauges taken from `live`.
    pub fn render(&self, live: &[ProjectStatus]) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.projects.set(live.len() as i64);
        self.pending
            .set(live.iter().filter(|p| p.pending.is_some()).count() as i64);
        self.running.set(
            live.iter()
                .filter(|p| p.state == crate::run::executor::ProjectState::Running)
                .count() as i64,
        );
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts every run that finishes, from its [`RunEvent::Finished`] on
/// `events` (subscribed before the daemon replays the spool, so direct runs
/// made while no daemon ran are counted too), until `stop` turns true. Wakes
/// only on run events. A receiver that falls more than the bus's capacity
/// behind loses the oldest events, and with them their counts.
pub(crate) async fn count_runs(
    metrics: Arc<Metrics>,
    mut events: crate::run::events::Events,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            e = events.recv() => match e.as_deref() {
                Ok(RunEvent::Finished(run)) => metrics.finished(run),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("metrics: {n} run event(s) missed; deployd_runs_total undercounts");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// `process_*`, read from /proc at scrape time.
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stat) = ProcStat::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "User and system CPU time spent",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size",
                stat.rss_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size",
                stat.vsize_bytes,
            ),
            ("process_open_fds", "Open file descriptors", stat.open_fds),
            (
                "process_start_time_seconds",
                "Start time since the Unix epoch",
                stat.start_time,
            ),
        ] {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// What `/proc/self/stat` says, in units Prometheus expects.
struct ProcStat {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    open_fds: f64,
    start_time: f64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces and parens.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        // USER_HZ is 100 in Linux's ABI, whatever the kernel's HZ.
        let ticks = 100.0;
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())?;
        // Field n of proc(5) is f[n - 3]: utime 14, stime 15, starttime 22,
        // vsize 23.
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())?;
        Some(ProcStat {
            cpu_seconds: (num(11)? + num(12)?) / ticks,
            start_time: boot + num(19)? / ticks,
            vsize_bytes: num(20)?,
            rss_bytes: rss_kib * 1024.0,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as f64,
        })
    }
}
