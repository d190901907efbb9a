//! Who wrote a journal, and whether that ward may still be running. Every
//! ward invocation repairs what dead wards left; a journal whose writer is
//! alive belongs to a job in progress and must be left alone. A pid alone
//! is not proof (pids are reused, and a state directory in a shared home
//! is seen from several hosts), so the journal records the host and the
//! process's start time beside it.

use crate::process::start_time;
use std::path::Path;

/// The ward process that owns a journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Owner {
    pub pid: u32,
    /// The host the process ran on (empty in journals of older wards:
    /// taken as this host).
    #[serde(default)]
    pub host: String,
    /// The process's start time in clock ticks since boot
    /// (`/proc/PID/stat` field 22), to tell a reused pid from the owner.
    #[serde(default)]
    pub pid_start: Option<u64>,
}

impl Owner {
    /// This process.
    pub(crate) fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            host: this_host(),
            pid_start: start_time(pid),
        }
    }

    /// Whether the owner may still be running. On another host ward cannot
    /// tell, so it must assume so; on this host, a live process with the
    /// recorded pid and start time is the owner. This process is never
    /// "another live owner" (it adopted the journal, or wrote it itself).
    pub(crate) fn may_be_alive(&self) -> bool {
        if !self.host.is_empty() && self.host != this_host() {
            return true;
        }
        if self.pid == std::process::id() {
            return false;
        }
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return false;
        }
        match (self.pid_start, start_time(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            // A journal without a start time, or a process ward cannot
            // read: the pid exists, so assume it is the owner.
            _ => true,
        }
    }

    /// "pid N" or "pid N on host H" for messages.
    pub(crate) fn describe(&self) -> String {
        if self.host.is_empty() || self.host == this_host() {
            format!("pid {}", self.pid)
        } else {
            format!("pid {} on host {}", self.pid, self.host)
        }
    }
}

/// This host's name, as the kernel knows it.
pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_another_live_owner() {
        let me = Owner::me();
        assert!(me.pid_start.is_some());
        assert!(!me.may_be_alive());
    }

    #[test]
    fn a_live_process_with_its_start_time_is_alive_and_a_reused_pid_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let owner = Owner {
            pid,
            host: this_host(),
            pid_start: start_time(pid),
        };
        assert!(owner.may_be_alive());
        let reused = Owner {
            pid_start: owner.pid_start.map(|s| s + 1),
            ..owner.clone()
        };
        assert!(!reused.may_be_alive(), "another start time: a reused pid");
        let elsewhere = Owner {
            host: "some-other-host.invalid".into(),
            ..reused
        };
        assert!(elsewhere.may_be_alive(), "another host: cannot tell");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!owner.may_be_alive(), "the process is gone");
    }
}
