//! `ward doctor`: what ward can reach, what is missing, and the fix for each
//! — and, for the snapshot target ward.toml names, the leftovers of
//! interrupted restores in its volume (swept by the restore rules).

use serde::Serialize;

use crate::pg::{self, cluster};
use crate::snapshot::Leftovers;
use crate::target::TargetSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    /// Not configured; not a problem unless you need it.
    Skipped,
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn all_ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Missing)
    }
}

/// Runs every check; `target` is the snapshot target the configuration
/// names (ward.toml's `[snapshot]` section), if any.
pub(crate) async fn run(database_url: Option<&str>, target: &TargetSpec) -> Report {
    let mut checks = vec![server_binaries()];
    checks.push(database(database_url).await);
    checks.push(docker().await);
    checks.push(leftovers(target).await);
    Report { checks }
}

const LEFTOVERS: &str = "restore leftovers";

/// Repairs the configured target's journal if a dead ward left one, and
/// sweeps its volume's stale swap directories.
async fn leftovers(spec: &TargetSpec) -> Check {
    if !spec.names_target() {
        return Check {
            name: LEFTOVERS,
            status: Status::Skipped,
            detail: "no snapshot target configured".into(),
            fix: Some(
                "name one in ward.toml's [snapshot] section (container, compose_service or \
                 volume) for doctor to sweep its volume"
                    .into(),
            ),
        };
    }
    let result = async {
        let cwd = std::env::current_dir()?;
        let target = crate::target::resolve(spec, &cwd).await?;
        crate::snapshot::sweep_leftovers(&target).await
    }
    .await;
    match result {
        Ok(Some(found)) => leftovers_check(&found),
        Ok(None) => Check {
            name: LEFTOVERS,
            status: Status::Ok,
            detail: "a data-directory target: an interrupted restore's leftovers are the \
                     siblings its journal names, handled on every ward run"
                .into(),
            fix: None,
        },
        Err(e) => Check {
            name: LEFTOVERS,
            status: Status::Missing,
            detail: format!("could not sweep: {e:#}"),
            fix: Some(
                "make the configured target reachable (or wait for the ward working on it), \
                 then run `ward doctor` again"
                    .into(),
            ),
        },
    }
}

/// What the sweep removed, kept and left to a running ward. Kept swap
/// directories may hold the only copy of the previous data: a person must
/// look, so they make the check fail.
fn leftovers_check(found: &Leftovers) -> Check {
    let list = |v: &[String]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut detail = format!(
        "volume {}: removed {}; kept {}; busy {}",
        found.volume,
        list(&found.removed),
        list(&found.kept),
        list(&found.busy)
    );
    for note in &found.notes {
        detail.push_str("; ");
        detail.push_str(note);
    }
    Check {
        name: LEFTOVERS,
        status: if found.kept.is_empty() {
            Status::Ok
        } else {
            Status::Missing
        },
        detail,
        fix: (!found.kept.is_empty()).then(|| {
            format!(
                "an interrupted restore whose journal is gone moved the previous data into {} \
                 in volume {}: look inside (old/ is the previous data, stage/ the restored one), \
                 move the right contents back to the volume root, then remove it",
                found.kept.join(", "),
                found.volume
            )
        }),
    }
}

fn server_binaries() -> Check {
    match cluster::find_bindir() {
        Ok(dir) => Check {
            name: "postgres server binaries",
            status: Status::Ok,
            detail: format!(
                "{} in {}",
                cluster::server_version(&dir).unwrap_or_else(|| "unknown version".into()),
                dir.display()
            ),
            fix: None,
        },
        Err(e) => Check {
            name: "postgres server binaries",
            status: Status::Missing,
            detail: "not found (needed by `ward demo` and the tests)".into(),
            fix: Some(e.to_string()),
        },
    }
}

async fn database(url: Option<&str>) -> Check {
    let name = "database";
    let Some(url) = url else {
        return Check {
            name,
            status: Status::Skipped,
            detail: "none configured".into(),
            fix: Some(
                "pass --database-url, set DATABASE_URL, or add database_url to ward.toml".into(),
            ),
        };
    };
    let result = async {
        let client = pg::connect(url).await?;
        pg::server_info(&client).await
    }
    .await;
    match result {
        Ok(info) => {
            let can_seed = info.superuser || info.create_in_database;
            Check {
                name,
                status: if can_seed {
                    Status::Ok
                } else {
                    Status::Missing
                },
                detail: format!(
                    "PostgreSQL {} as {} on {}{}{}",
                    info.version,
                    info.user,
                    info.database,
                    if info.superuser { ", superuser" } else { "" },
                    if info.create_db {
                        ", may create databases"
                    } else {
                        ""
                    },
                ),
                fix: (!can_seed).then(|| {
                    format!(
                        "ward needs CREATE on the database to make its tables: \
                         GRANT CREATE ON DATABASE {} TO {}",
                        info.database, info.user
                    )
                }),
            }
        }
        Err(e) => Check {
            name,
            status: Status::Missing,
            detail: "unreachable".into(),
            fix: Some(format!("{e:#}")),
        },
    }
}

async fn docker() -> Check {
    let name = "docker engine";
    match crate::docker::engine_info().await {
        Ok(info) => Check {
            name,
            status: Status::Ok,
            detail: format!(
                "Docker {} ({}), API {} negotiated",
                info.engine_version, info.os, info.api_version
            ),
            fix: None,
        },
        Err(e) => Check {
            name,
            status: Status::Missing,
            detail: format!("{e:#}"),
            fix: Some(
                "start the engine (e.g. `systemctl start docker`), or set DOCKER_HOST; \
                 needed for snapshots of container volumes"
                    .into(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_swap_directories_fail_the_leftovers_check_and_say_what_to_do() {
        let mut found = Leftovers {
            volume: "db-data".into(),
            removed: vec![".ward-trash-1".into()],
            busy: vec![".ward-swap-2".into()],
            ..Leftovers::default()
        };
        let ok = leftovers_check(&found);
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.detail,
            "volume db-data: removed .ward-trash-1; kept nothing; busy .ward-swap-2"
        );
        found.kept.push(".ward-swap-3".into());
        let kept = leftovers_check(&found);
        assert_eq!(kept.status, Status::Missing);
        assert!(kept.fix.unwrap().contains(".ward-swap-3 in volume db-data"));
    }
}
