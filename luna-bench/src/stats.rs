//! Latency percentiles and throughput.

use std::time::Duration;

/// Latencies of a run and its wall time.
pub struct Stats {
    lat: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    /// From raw latencies and the run's wall time.
    pub fn new(mut lat: Vec<Duration>, wall: Duration) -> Stats {
        lat.sort_unstable();
        Stats { lat, wall }
    }

    /// Runs measured one after another, as one.
    pub fn merge(runs: Vec<Stats>) -> Stats {
        let wall = runs.iter().map(|s| s.wall).sum();
        let lat = runs.into_iter().flat_map(|s| s.lat).collect();
        Stats::new(lat, wall)
    }

    fn pct(&self, p: usize) -> Duration {
        if self.lat.is_empty() {
            return Duration::ZERO;
        }
        self.lat[(self.lat.len() * p / 100).min(self.lat.len() - 1)]
    }

    /// Operations measured.
    pub fn count(&self) -> u64 {
        self.lat.len() as u64
    }

    /// Median latency.
    pub fn p50(&self) -> Duration {
        self.pct(50)
    }

    /// 99th percentile latency.
    pub fn p99(&self) -> Duration {
        self.pct(99)
    }

    /// Operations per second.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a display figure; counts are far below 2^52"
    )]
    pub fn per_sec(&self) -> f64 {
        self.lat.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// `p50 … p99 …`.
    pub fn latency_line(&self) -> String {
        format!(
            "p50 {:>7.3} ms  p99 {:>7.3} ms",
            ms(self.p50()),
            ms(self.pct(99))
        )
    }

    /// `N ops/s  p50 … p99 …`.
    pub fn line(&self) -> String {
        format!("{:>8.0} ops/s  {}", self.per_sec(), self.latency_line())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
