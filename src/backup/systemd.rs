//! The systemd units that run `ward backup` on a schedule. Scheduling is the
//! platform's job; ward only writes units that get the details right:
//!
//! - the service is `Type=oneshot` and runs this ward binary in the
//!   directory of the `ward.toml` it was generated for (ward reads its
//!   configuration from the working directory), as this user, so the state
//!   directory (journals, locks) is the one an interactive ward uses;
//! - `KillSignal=SIGINT`: stopping the unit (or its `TimeoutStartSec=`)
//!   is an interrupt ward rolls back from (a cold backup restarts the
//!   container), not a kill;
//! - the timer is `Persistent=true` (a run missed while the VPS was off runs
//!   at boot) with a `RandomizedDelaySec=`, so many hosts do not hit one
//!   bucket at the same second.
//!
//! Values land in unit files: a line break or control character would inject
//! directives, so they are refused; `%` (a systemd specifier) is escaped.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

pub(crate) const UNIT: &str = "ward-backup";

/// The two units' text.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Units {
    pub service: String,
    pub timer: String,
}

/// What goes into the units.
#[derive(Debug, Clone)]
pub(crate) struct UnitSpec<'a> {
    pub exe: &'a Path,
    pub workdir: &'a Path,
    pub user: &'a str,
    pub on_calendar: &'a str,
    pub randomized_delay: &'a str,
}

/// A value for a unit file, or a usage error naming `what`.
fn value(raw: &str, what: &str) -> Result<String> {
    if raw.is_empty() || raw.chars().any(char::is_control) {
        return crate::error::usage(format!(
            "{what} {raw:?} cannot go into a systemd unit (empty, or a line break or control \
             character) — fix it"
        ));
    }
    Ok(raw.replace('%', "%%"))
}

/// A command-line word for `ExecStart=`: double-quoted, `\` and `"` escaped.
fn word(raw: &str, what: &str) -> Result<String> {
    let v = value(raw, what)?;
    Ok(format!(
        "\"{}\"",
        v.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

pub(crate) fn units(spec: &UnitSpec) -> Result<Units> {
    let exe = word(&spec.exe.to_string_lossy(), "the ward binary's path")?;
    let workdir = value(&spec.workdir.to_string_lossy(), "the working directory")?;
    let user = value(spec.user, "the user")?;
    let on_calendar = value(spec.on_calendar, "OnCalendar")?;
    let delay = value(spec.randomized_delay, "RandomizedDelaySec")?;
    let service = format!(
        "# Written by `ward backup --print-systemd`: runs `ward backup` with {workdir}/ward.toml.
[Unit]
Description=ward backup (configuration in {workdir}/ward.toml)
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
User={user}
WorkingDirectory={workdir}
# Credentials for remote stores (AWS_ACCESS_KEY_ID …), mode 0600; optional.
EnvironmentFile=-/etc/ward/backup.env
ExecStart={exe} backup
# Stopping the unit interrupts ward, which rolls back cleanly (a cold
# backup restarts the container); a run is bounded so a hang is seen.
KillSignal=SIGINT
TimeoutStartSec=6h
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
"
    );
    let timer = format!(
        "# Written by `ward backup --print-systemd`: when ward-backup.service runs.
[Unit]
Description=Run ward backup ({on_calendar})

[Timer]
OnCalendar={on_calendar}
# A run missed while the machine was off happens at the next boot.
Persistent=true
RandomizedDelaySec={delay}
Unit={UNIT}.service

[Install]
WantedBy=timers.target
"
    );
    Ok(Units { service, timer })
}

/// Writes the units into `dir` (temporary name, then rename; mode 0644).
pub(crate) fn write(units: &Units, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut written = Vec::new();
    for (ext, text) in [("service", &units.service), ("timer", &units.timer)] {
        let path = dir.join(format!("{UNIT}.{ext}"));
        let tmp = dir.join(format!(".{UNIT}.{ext}.tmp-{}", std::process::id()));
        let placed = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::anyhow!("cannot write {}: {e}", path.display()));
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(exe: &'a Path, on_calendar: &'a str) -> UnitSpec<'a> {
        UnitSpec {
            exe,
            workdir: Path::new("/srv/app"),
            user: "root",
            on_calendar,
            randomized_delay: "30min",
        }
    }

    #[test]
    fn line_breaks_cannot_inject_directives() {
        let e = units(&spec(
            Path::new("/usr/bin/ward"),
            "daily\nExecStartPre=/bin/evil",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("OnCalendar"), "{e}");
    }

    #[test]
    fn paths_are_quoted_and_specifiers_escaped() {
        let u = units(&spec(Path::new("/opt/my ward/100%/ward"), "daily")).unwrap();
        assert!(
            u.service
                .contains("ExecStart=\"/opt/my ward/100%%/ward\" backup"),
            "{}",
            u.service
        );
    }
}
