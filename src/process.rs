//! Facts about local processes that ward uses to tell a live owner from a
//! dead one (journals, locks, helper containers): a pid alone can be reused,
//! a pid with its start time cannot.

/// A process's start time (field 22 of `/proc/PID/stat`; the command name
/// in field 2 may hold spaces and parentheses, so count from its end).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}
