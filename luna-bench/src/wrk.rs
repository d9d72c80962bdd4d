//! `wrk` (Debian package) as the HTTP load generator: a separate C process over TCP loopback,
//! like pgbench for the database, so the figures are the hub's and not an in-process client's.
//! A Lua script spreads the requests over the users and prints wrk's own summary in one line.

use std::process::Command;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Completed requests (any status).
    pub(crate) requests: u64,
    /// Completed requests answered outside 2xx/3xx.
    pub(crate) non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub(crate) errors: u64,
    pub(crate) seconds: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Run {
    #[allow(
        clippy::cast_precision_loss,
        reason = "a display figure; counts are far below 2^52"
    )]
    pub(crate) fn per_sec(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    /// Requests answered 2xx (acknowledged).
    pub(crate) fn ok(&self) -> u64 {
        self.requests - self.non_2xx
    }
}

/// The request bodies: `{user}` becomes a user id `bench-<n>` (n below `users`); each request
/// carries one of the bearer tokens, picked at random (none: no `Authorization`).
pub(crate) struct Load<'a> {
    pub(crate) url: &'a str,
    pub(crate) bearers: &'a [String],
    /// The JSON body, with `{user}` where the user id goes (or none).
    pub(crate) body: &'a str,
    pub(crate) users: usize,
    pub(crate) connections: usize,
    pub(crate) seconds: u64,
}

fn script(load: &Load<'_>) -> String {
    // Tokens are URL-safe base64 and dots, service keys `luna_sk_…`: no quote to escape.
    let tokens = load
        .bearers
        .iter()
        .map(|t| format!("\"Bearer {t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // Lua's long brackets keep the JSON literal; `%d` takes the user number.
    let body = load.body.replace("{user}", "bench-%d");
    format!(
        "wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         local tokens = {{ {tokens} }}\n\
         local users = {users}\n\
         local threads = 0\n\
         setup = function(thread)\n\
           thread:set(\"tid\", threads)\n\
           threads = threads + 1\n\
         end\n\
         local seeded = false\n\
         request = function()\n\
           if not seeded then\n\
             math.randomseed(os.time() + 7919 * tid)\n\
             seeded = true\n\
           end\n\
           local u = math.random(0, users - 1)\n\
           local headers = {{ [\"Content-Type\"] = \"application/json\" }}\n\
           if #tokens > 0 then\n\
             headers[\"Authorization\"] = tokens[math.random(#tokens)]\n\
           end\n\
           return wrk.format(nil, nil, headers, string.format([[{body}]], u))\n\
         end\n\
         done = function(s, latency, requests)\n\
           local e = s.errors\n\
           io.write(string.format(\"LUNA_WRK %d %d %d %d %d %d\\n\", s.requests, s.duration, \
             e.status, e.connect + e.read + e.write + e.timeout, \
             latency:percentile(50), latency:percentile(99)))\n\
         end\n",
        users = load.users.max(1),
    )
}

/// Runs wrk (2 threads: the machine's cores) and reads its summary line.
pub(crate) fn run(load: &Load<'_>) -> Run {
    let path = std::env::temp_dir().join(format!(
        "luna-wrk-{}-{}.lua",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&path, script(load)).expect("wrk script");
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &load.connections.to_string()])
        .args(["-d", &format!("{}s", load.seconds), "--timeout", "10s"])
        .arg("-s")
        .arg(&path)
        .arg(load.url)
        .output()
        .expect("wrk runs (Debian package wrk: apt-get install wrk)");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("LUNA_WRK "))
        .unwrap_or_else(|| panic!("wrk printed no summary: {text}"));
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|n| n.parse().expect("a wrk figure"))
        .collect();
    #[allow(
        clippy::cast_precision_loss,
        reason = "microsecond figures far below 2^52"
    )]
    let ms = |us: u64| us as f64 / 1000.0;
    Run {
        requests: v[0],
        seconds: ms(v[1]) / 1000.0,
        non_2xx: v[2],
        errors: v[3],
        p50_ms: ms(v[4]),
        p99_ms: ms(v[5]),
    }
}
