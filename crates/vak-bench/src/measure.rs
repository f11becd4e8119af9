//! Measuring a controller from outside: percentiles, request tallies, the process's CPU and
//! memory from /proc, Vault's audit log and Prometheus metrics.
//!
//! Everything here but the file reads is pure, so the arithmetic is unit-tested.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Nearest-rank percentile of sorted samples: the smallest sample with at least `p` percent of
/// the samples at or below it. None for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median, p99 and maximum of latency samples, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every sample, in the order measured.
    pub samples_ms: Vec<f64>,
}

impl Summary {
    pub fn of(samples_ms: Vec<f64>) -> Summary {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        Summary {
            count: sorted.len(),
            p50_ms: percentile(&sorted, 50.0).unwrap_or(0.0),
            p99_ms: percentile(&sorted, 99.0).unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            samples_ms,
        }
    }
}

/// Kubernetes requests by (verb, resource).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeTally(pub BTreeMap<(String, String), u64>);

impl KubeTally {
    /// Adds `n` requests.
    pub fn add(&mut self, verb: &str, resource: &str, n: u64) {
        *self
            .0
            .entry((verb.to_string(), resource.to_string()))
            .or_insert(0) += n;
    }

    /// The server's counters, all response codes (`only_success`: 2xx only).
    pub fn from_counters(counters: &kube_emulator::Counters, only_success: bool) -> KubeTally {
        let mut tally = KubeTally::default();
        for (verb, resource, code, n) in counters.entries() {
            if !only_success || (200..300).contains(&code) {
                tally.add(&verb, &resource, n);
            }
        }
        tally
    }

    /// `self - other` per key, never below zero: a controller's requests are the server's
    /// count minus what the harness sent.
    pub fn minus(&self, other: &KubeTally) -> KubeTally {
        let mut out = BTreeMap::new();
        for (key, n) in &self.0 {
            let left = n.saturating_sub(other.0.get(key).copied().unwrap_or(0));
            if left > 0 {
                out.insert(key.clone(), left);
            }
        }
        KubeTally(out)
    }

    /// Totals by verb.
    pub fn by_verb(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((verb, _), n) in &self.0 {
            *out.entry(verb.clone()).or_insert(0) += n;
        }
        out
    }

    /// `"<verb> <resource>" -> count`, for results.json.
    pub fn flat(&self) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .map(|((v, r), n)| (format!("{v} {r}"), *n))
            .collect()
    }

    #[cfg(test)]
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.0
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// CPU time and memory of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// utime + stime, in seconds.
    pub cpu_seconds: f64,
    /// VmRSS, bytes.
    pub rss_bytes: u64,
    /// VmHWM (peak resident set), bytes.
    pub peak_rss_bytes: u64,
}

impl ProcSample {
    /// Reads /proc/<pid>/stat and /proc/<pid>/status.
    pub fn read(pid: u32) -> Result<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("read /proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("read /proc/{pid}/status"))?;
        let ticks =
            parse_stat_ticks(&stat).with_context(|| format!("parse /proc/{pid}/stat: {stat:?}"))?;
        Ok(ProcSample {
            cpu_seconds: ticks as f64 / rustix::param::clock_ticks_per_second() as f64,
            rss_bytes: status_kib(&status, "VmRSS").unwrap_or(0) * 1024,
            peak_rss_bytes: status_kib(&status, "VmHWM").unwrap_or(0) * 1024,
        })
    }
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces, so fields count from the last ')'.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, so index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `<field>:   <n> kB` line of /proc/<pid>/status, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// One request in Vault's audit log that the harness did not make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRequest {
    /// `read`, `list`, `create`, `update`, `delete`.
    pub operation: String,
    /// The request path (audit devices do not hash it).
    pub path: String,
}

/// The requests of audit log lines (JSON, one entry a line), leaving out the harness's own:
/// it always uses the root token, which no controller has, so entries whose token carries the
/// `root` policy are the harness's. Unauthenticated requests (an AppRole login) are the
/// controller's. `response` entries are skipped: each request has one of each.
pub fn parse_audit(text: &str) -> Vec<AuditRequest> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["type"] == "request")
        .filter(|e| {
            !e["auth"]["policies"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == "root"))
        })
        .map(|e| AuditRequest {
            operation: e["request"]["operation"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            path: e["request"]["path"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

/// Requests by operation.
pub fn count_operations(requests: &[AuditRequest]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in requests {
        *out.entry(r.operation.clone()).or_insert(0) += 1;
    }
    out
}

/// Reads an audit log file from where it last stopped, whole lines only.
pub struct AuditTail {
    path: PathBuf,
    offset: u64,
}

impl AuditTail {
    pub fn new(path: &Path) -> AuditTail {
        AuditTail {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// The controller's requests logged since the last call. Vault writes an entry before it
    /// answers, so every request that got an answer is in the file.
    pub fn read(&mut self) -> Result<Vec<AuditRequest>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("open {}", self.path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("read {}", self.path.display()))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        Ok(parse_audit(&String::from_utf8_lossy(&bytes[..whole])))
    }
}

/// The sum over every series of a metric in Prometheus/OpenMetrics text (e.g. passes of every
/// result). None when the metric is absent.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labels) = rest.strip_prefix('{') {
            labels.split_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), Some(50.0));
        assert_eq!(percentile(&s, 99.0), Some(99.0));
        assert_eq!(percentile(&s, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 50.0), Some(3.0));
        // p99 of 5 samples is the largest (rank ceil(4.95) = 5).
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 99.0), Some(5.0));
        assert_eq!(percentile(&[], 50.0), None);
        let summary = Summary::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((summary.p50_ms, summary.max_ms), (2.0, 3.0));
        assert_eq!(summary.samples_ms, [3.0, 1.0, 2.0]);
    }

    #[test]
    fn tallies_subtract_the_harness() {
        let mut server = KubeTally::default();
        server.add("list", "serviceaccounts", 3);
        server.add("create", "serviceaccounts", 10);
        server.add("watch", "serviceaccounts", 2);
        let mut harness = KubeTally::default();
        harness.add("list", "serviceaccounts", 3);
        harness.add("watch", "serviceaccounts", 1);
        harness.add("patch", "configmaps", 1);
        let ours = server.minus(&harness);
        assert_eq!(ours.get("create", "serviceaccounts"), 10);
        assert_eq!(ours.get("list", "serviceaccounts"), 0);
        assert_eq!(ours.by_verb().get("watch"), Some(&1));
        assert_eq!(ours.flat().len(), 2);
    }

    #[test]
    fn proc_files() {
        let stat = "1234 (vault auth (x)) S 1 1234 1234 0 -1 4194304 500 0 0 0 250 40 0 0 20 0 \
                    9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(290));
        let status = "Name:\tvak\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(20480));
        assert_eq!(status_kib(status, "VmRSS"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn audit_entries_of_the_controller_only() {
        let log = [
            r#"{"type":"request","auth":{"display_name":"token","policies":["root"]},"request":{"operation":"list","path":"auth/kubernetes/bench/cluster/role"}}"#,
            r#"{"type":"response","auth":{"display_name":"token","policies":["root"]},"request":{"operation":"list","path":"auth/kubernetes/bench/cluster/role"}}"#,
            r#"{"type":"request","request":{"operation":"update","path":"auth/approle/login"}}"#,
            r#"{"type":"request","auth":{"display_name":"approle","policies":["default","vault-auth-kubernetes"]},"request":{"operation":"create","path":"auth/kubernetes/bench/cluster/role/role-1"}}"#,
            r#"{"type":"request","auth":{"display_name":"approle","policies":["default"]},"request":{"operation":"read","path":"sys/auth"}}"#,
            "not json",
        ]
        .join("\n");
        let requests = parse_audit(&log);
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].path, "auth/approle/login");
        let ops = count_operations(&requests);
        assert_eq!(ops.get("update"), Some(&1));
        assert_eq!(ops.get("create"), Some(&1));
        assert_eq!(ops.get("read"), Some(&1));
        assert_eq!(ops.get("list"), None);
    }

    #[test]
    fn audit_tail_reads_whole_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let line = r#"{"type":"request","request":{"operation":"read","path":"sys/auth"}}"#;
        std::fs::write(&path, format!("{line}\n{line}")).unwrap();
        let mut tail = AuditTail::new(&path);
        assert_eq!(tail.read().unwrap().len(), 1);
        // The unfinished line is read once it is complete.
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        assert_eq!(tail.read().unwrap().len(), 1);
        assert_eq!(tail.read().unwrap().len(), 0);
    }

    #[test]
    fn metric_sums() {
        let text = "# HELP vault_auth_kubernetes_reconciliations Passes.\n\
                    # TYPE vault_auth_kubernetes_reconciliations counter\n\
                    vault_auth_kubernetes_reconciliations_total{result=\"success\"} 12\n\
                    vault_auth_kubernetes_reconciliations_total{result=\"error\"} 1\n\
                    vault_auth_kubernetes_reconcile_duration_seconds_sum 0.5\n\
                    vault_auth_kubernetes_leader 1\n";
        assert_eq!(
            metric_sum(text, "vault_auth_kubernetes_reconciliations_total"),
            Some(13.0)
        );
        assert_eq!(metric_sum(text, "vault_auth_kubernetes_leader"), Some(1.0));
        assert_eq!(metric_sum(text, "vault_auth_kubernetes_reconcile"), None);
    }
}
