//! Who holds an outbox claim, and whether that process is still alive.
//!
//! A worker claims a row (`sending`) for [`crate::outbound::worker::CLAIM_LEASE`] before it
//! hands the mail to the transport. When the process dies in between (`kill -9`, a crash, an
//! OOM kill), its claims would block those mails until the lease expires. So every claim
//! records its owner: the boot ID, the PID namespace, the PID and the process's start time
//! (from `/proc`). A claim whose owner provably no longer runs (another boot, or no process
//! with that PID and start time in our namespace) is released at once; a claim whose owner
//! we cannot see (another PID namespace, no `/proc`) waits for its lease as before.
//!
//! Invariant: a live owner is never declared dead. PIDs are reused, so the start time (clock
//! ticks since boot, field 22 of `/proc/PID/stat`) is part of the identity.

use std::fs;

/// The identity of one process, as stored in `outbox.lease_owner`:
/// `boot_id/pid_namespace/pid/start_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    boot_id: String,
    pid_namespace: String,
    pid: u32,
    start_time: u64,
}

impl Owner {
    /// This process, or `None` where `/proc` does not tell (then claims carry no owner and
    /// only expire).
    pub fn current() -> Option<Owner> {
        Owner::of_process(std::process::id())
    }

    /// The process `pid` of our PID namespace, while it runs.
    pub fn of_process(pid: u32) -> Option<Owner> {
        Some(Owner {
            boot_id: boot_id()?,
            pid_namespace: own_pid_namespace()?,
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.boot_id, self.pid_namespace, self.pid, self.start_time
        )
    }

    /// Reads the stored form back; `None` for anything else.
    pub fn decode(text: &str) -> Option<Owner> {
        let mut parts = text.rsplitn(3, '/');
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let (boot_id, pid_namespace) = parts.next()?.split_once('/')?;
        Some(Owner {
            boot_id: boot_id.to_string(),
            pid_namespace: pid_namespace.to_string(),
            pid,
            start_time,
        })
    }

    /// True only when this owner certainly no longer runs, judged from the process `me`:
    /// the machine rebooted since, or our PID namespace has no process with its PID and
    /// start time. An owner in another PID namespace is never judged dead.
    pub fn is_dead(&self, me: &Owner) -> bool {
        if self.boot_id != me.boot_id {
            return true;
        }
        if self.pid_namespace != me.pid_namespace {
            return false;
        }
        start_time(self.pid) != Some(self.start_time)
    }
}

fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// The PID namespace, e.g. `pid:[4026531836]`.
fn own_pid_namespace() -> Option<String> {
    let link = fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_string_lossy().into_owned();
    (!text.is_empty() && !text.contains('/')).then_some(text)
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks after boot), or `None` when no
/// such process exists. A zombie (exited, not yet reaped) counts as gone.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after it start
    // after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 22 is fields[19].
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_round_trips_and_this_process_is_alive() {
        let me = Owner::current().expect("/proc is readable on Linux");
        assert_eq!(Owner::decode(&me.encode()), Some(me.clone()));
        assert!(!me.is_dead(&me));
    }

    #[test]
    fn an_exited_process_a_reused_pid_and_another_boot_are_dead() {
        let me = Owner::current().expect("identity");
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let alive_then = start_time(pid);
        child.wait().expect("wait");
        let exited = Owner {
            pid,
            start_time: alive_then.unwrap_or(1),
            ..me.clone()
        };
        assert!(exited.is_dead(&me), "an exited (reaped) process is dead");
        let reused = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(reused.is_dead(&me), "same PID, another start time");
        let rebooted = Owner {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert!(rebooted.is_dead(&me));
    }

    #[test]
    fn an_owner_in_another_namespace_or_unreadable_is_never_dead() {
        let me = Owner::current().expect("identity");
        let elsewhere = Owner {
            pid_namespace: "pid:[1]".into(),
            pid: 999_999_999,
            ..me.clone()
        };
        assert!(!elsewhere.is_dead(&me));
        assert_eq!(Owner::decode("garbage"), None);
        assert_eq!(Owner::decode(""), None);
    }
}
