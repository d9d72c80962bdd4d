//! Where the CPU goes during one measurement: the process under test (the hub, or this tool for
//! its baseline routes), the PostgreSQL server (every `postgres` process, plus what the
//! postmaster reaped from backends that exited meanwhile — pgbench's sessions end with it), and
//! the whole machine, read from `/proc` before and after. On a 2-vCPU machine the load
//! generator's share is what the machine spent beside the two.

use std::process::Command;

/// Cumulative CPU ticks at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    process: u64,
    postgres: u64,
    machine: u64,
}

/// CPU spent between two snapshots, per request, in microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerRequest {
    /// The process under test, µs.
    pub(crate) process: f64,
    /// PostgreSQL's processes, µs.
    pub(crate) postgres_cpu: f64,
    /// The rest of the machine (the load generator), µs.
    pub(crate) rest: f64,
}

/// Clock ticks per second (`getconf CLK_TCK`).
fn ticks_per_second() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}

/// The fields after the command name of `/proc/<pid>/stat` (the name may hold spaces), and the
/// name.
fn stat_fields(pid: &str) -> Option<(String, Vec<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    // Field 3 (state) is not a number; keep positions by mapping it to 0.
    let fields = stat[close + 1..]
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some((name, fields))
}

/// utime + stime of one process (fields 14 and 15), and cutime + cstime (16 and 17).
fn own_and_reaped(fields: &[u64]) -> (u64, u64) {
    // `fields[0]` is field 3.
    let at = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    (at(14) + at(15), at(16) + at(17))
}

fn process_ticks(pid: u32) -> u64 {
    let (_, fields) = stat_fields(&pid.to_string()).expect("the measured process is running");
    own_and_reaped(&fields).0
}

/// Every `postgres` process's own ticks, plus the reaped children's ticks of those whose
/// parent is not `postgres` (the postmaster).
fn postgres_ticks() -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some((name, fields)) = stat_fields(&pid) else {
            continue;
        };
        if name != "postgres" {
            continue;
        }
        let (own, reaped) = own_and_reaped(&fields);
        total += own;
        let parent = fields.get(1).copied().unwrap_or(0).to_string();
        if stat_fields(&parent).is_none_or(|(n, _)| n != "postgres") {
            total += reaped;
        }
    }
    total
}

/// Busy ticks of the whole machine (`/proc/stat`: everything but idle and iowait).
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let line = stat.lines().next().expect("a cpu line");
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("a tick count"))
        .collect();
    // user nice system idle iowait irq softirq steal …: steal is the hypervisor's, not this
    // machine's work; guest time is already in user.
    values.iter().take(7).sum::<u64>() - values[3] - values[4]
}

impl Snapshot {
    /// Now, for the process `pid`.
    pub(crate) fn take(pid: u32) -> Snapshot {
        Snapshot {
            process: process_ticks(pid),
            postgres: postgres_ticks(),
            machine: machine_ticks(),
        }
    }

    /// CPU per request from this snapshot to `later`, over `requests` requests.
    #[allow(
        clippy::cast_precision_loss,
        reason = "display figures; tick counts are far below 2^52"
    )]
    pub(crate) fn per_request(&self, later: &Snapshot, requests: u64) -> PerRequest {
        let us_per_tick = 1_000_000.0 / ticks_per_second() as f64;
        let per = |ticks: u64| ticks as f64 * us_per_tick / requests.max(1) as f64;
        let process = later.process.saturating_sub(self.process);
        let postgres = later.postgres.saturating_sub(self.postgres);
        let machine = later.machine.saturating_sub(self.machine);
        PerRequest {
            process: per(process),
            postgres_cpu: per(postgres),
            rest: per(machine.saturating_sub(process + postgres)),
        }
    }
}
