//! `ward doctor`: what ward can reach, what is missing, and the fix for each.

use serde::Serialize;

use crate::pg::{self, cluster};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Not configured; not a problem unless you need it.
    Skipped,
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Missing)
    }
}

pub async fn run(database_url: Option<&str>) -> Report {
    let mut checks = vec![server_binaries()];
    checks.push(database(database_url).await);
    checks.push(docker().await);
    Report { checks }
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
