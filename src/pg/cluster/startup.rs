//! What starting a throwaway server takes besides the server itself: a
//! free port, a fresh superuser password, and reading why a start failed
//! (a port taken by someone else is retried; anything else is explained).
//! Split from [`super`] (the cluster's life cycle).

use std::net::TcpListener;

use anyhow::{Context, Result};

/// Why one `pg_ctl start` did not bring the server up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    PortTaken,
    Failed(String),
}

/// Why a start failed, from what it wrote to the server log (and pg_ctl's
/// own error output when the log says nothing).
pub(super) fn refusal(log: &str, stderr: &[u8]) -> Refusal {
    if log.contains("Address already in use") {
        return Refusal::PortTaken;
    }
    let why = log
        .lines()
        .rev()
        .find(|line| line.contains("FATAL") || line.contains("ERROR"))
        .or_else(|| log.lines().rev().find(|line| !line.trim().is_empty()))
        .map(|line| line.trim().to_string())
        .unwrap_or_else(|| last_line(stderr));
    Refusal::Failed(why)
}

/// The last line of a command's error output.
pub(super) fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .trim()
        .lines()
        .last()
        .unwrap_or("no error output")
        .to_string()
}

/// A superuser password for a throwaway cluster: 16 bytes from the operating
/// system's random source as hex. Never a seeded generator — those are
/// predictable by design, and another local user could log in.
pub(crate) fn fresh_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| {
        anyhow::anyhow!("cannot read the system's random source for a password: {err}")
    })?;
    Ok(format!("ward-{}", hex::encode(bytes)))
}

/// A TCP port of 127.0.0.1 that was free a moment ago (callers retry when
/// another process takes it first).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_come_fresh_from_the_os() {
        let (first, second) = (fresh_password().unwrap(), fresh_password().unwrap());
        assert_ne!(first, second);
        let hex = first.strip_prefix("ward-").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_taken_port_is_retried_and_other_failures_are_explained() {
        // PostgreSQL 15 and 18 write the bind failure, then the consequence.
        let taken = "2026-12-03 14:00:00.000 UTC [77] LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                     2026-12-03 14:00:00.000 UTC [77] HINT:  Is another postmaster already running on port 5555? If not, wait a few seconds and retry.\n\
                     2026-12-03 14:00:00.000 UTC [77] WARNING:  could not create listen socket for \"127.0.0.1\"\n\
                     2026-12-03 14:00:00.000 UTC [77] FATAL:  could not create any TCP/IP sockets\n";
        assert_eq!(refusal(taken, b""), Refusal::PortTaken);
        let bad = "2026-12-03 14:00:00.000 UTC [78] FATAL:  database files are incompatible with server\n\
                   2026-12-03 14:00:00.000 UTC [78] DETAIL:  The data directory was initialized by PostgreSQL version 18.\n";
        assert_eq!(
            refusal(bad, b"pg_ctl: could not start server"),
            Refusal::Failed(
                "2026-12-03 14:00:00.000 UTC [78] FATAL:  database files are incompatible with server"
                    .into()
            )
        );
        assert_eq!(
            refusal("", b"pg_ctl: could not start server\n"),
            Refusal::Failed("pg_ctl: could not start server".into())
        );
    }
}
