//! Which process holds a float, written into the float's lease id, so a gateway that starts (or
//! sweeps) can tell the floats of a process that is gone from those of one still running and
//! release them at once instead of waiting for their expiry.
//!
//! A float id reads `flt_<domain>_<pid>_<start>_<nonce>_<n>`. The domain names where that pid
//! means that process: the machine's boot and the pid namespace (on Linux, a hash of
//! `/proc/sys/kernel/random/boot_id` and `/proc/self/ns/pid`), so two containers or two
//! machines never judge each other's processes. `start` is the process's start time (field 22
//! of `/proc/<pid>/stat`), so a reused pid is not taken for the old process. Where `/proc` is
//! missing the domain is `x` and no float is ever judged gone: it expires after its TTL.

use std::fmt::Write as _;

/// The process writing floats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    domain: String,
    pid: u32,
    start: u64,
}

/// FNV-1a, 64 bits: a stable short name for the domain (not a secret).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A process's start time from its `/proc/<pid>/stat` (field 22, after the parenthesized name,
/// which may itself hold spaces and parentheses).
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // fields after the name start at field 3 (state); the start time is field 22
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl Holder {
    /// This process.
    pub(crate) fn current() -> Holder {
        let boot = read("/proc/sys/kernel/random/boot_id");
        let ns = std::fs::read_link("/proc/self/ns/pid").ok();
        let start = read("/proc/self/stat").as_deref().and_then(start_time);
        let domain = match (boot, ns, start) {
            (Some(b), Some(n), Some(_)) => format!(
                "{:016x}",
                fnv(&[b.trim().as_bytes(), n.to_string_lossy().as_bytes()])
            ),
            _ => "x".to_owned(),
        };
        Holder {
            domain,
            pid: std::process::id(),
            start: start.unwrap_or(0),
        }
    }

    /// The id of this holder's `n`-th float (`nonce` tells apart two ledgers in one process).
    pub(crate) fn float_id(&self, nonce: u64, n: u64) -> String {
        let mut s = String::with_capacity(64);
        let _ = write!(
            s,
            "flt_{}_{}_{}_{nonce:016x}_{n}",
            self.domain, self.pid, self.start
        );
        s
    }

    /// The holder a float id names (`None` for an id of another form, such as an older
    /// version's `flt_<nonce>_<n>`).
    pub(crate) fn of(id: &str) -> Option<Holder> {
        let mut parts = id.strip_prefix("flt_")?.split('_');
        let domain = parts.next()?.to_owned();
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        (parts.count() == 2).then_some(Holder { domain, pid, start })
    }

    /// Whether `other`, a holder in this holder's domain, is known to be gone: no such process,
    /// or a different process under its pid. Holders of other domains (other machines, other
    /// containers, no `/proc`) are never known to be gone.
    pub(crate) fn knows_gone(&self, other: &Holder) -> bool {
        if self.domain == "x" || other.domain != self.domain {
            return false;
        }
        if other.pid == self.pid && other.start == self.start {
            return false;
        }
        match read(&format!("/proc/{}/stat", other.pid)) {
            None => true,
            Some(stat) => start_time(&stat).is_some_and(|s| s != other.start),
        }
    }

    /// The process id, for messages.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_float_id_names_its_holder() {
        let me = Holder::current();
        let id = me.float_id(0xabc, 7);
        assert_eq!(Holder::of(&id), Some(me.clone()));
        assert_eq!(Holder::of("flt_00000000000000ab_3"), None);
        assert_eq!(Holder::of("rsv_req_1"), None);
        // this very process is not gone
        assert!(!me.knows_gone(&me));
    }

    #[test]
    fn the_start_time_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 1";
        assert_eq!(start_time(stat), Some(987_654));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_process_of_this_domain_is_gone_and_one_elsewhere_is_not() {
        let me = Holder::current();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder { pid, ..me.clone() };
        assert!(me.knows_gone(&dead));
        // a reused pid: the process under it started at another time
        let reused = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(me.knows_gone(&reused));
        let elsewhere = Holder {
            domain: "0123456789abcdef".into(),
            ..dead
        };
        assert!(!me.knows_gone(&elsewhere));
    }
}
