//! A database URL for a target container, through the port it publishes for
//! 5432 and the user and database of its `POSTGRES_*` environment.

use std::path::Path;

use anyhow::Result;

use super::{TargetSpec, container_name};
use crate::docker::{self, ContainerFacts};
use crate::error::UsageError;

/// Where `ward seed` and `ward check` connect when no `--database-url` /
/// `DATABASE_URL` is given: the target container (`--container`,
/// `--compose-service`, `[snapshot]` in ward.toml, or the one Postgres
/// container of the compose project) through the host port it publishes for
/// 5432, as the user and database of its `POSTGRES_*` environment. The URL
/// holds the password: callers print it only through `pg::describe`.
pub(crate) async fn database_url(spec: &TargetSpec, cwd: &Path) -> Result<String> {
    let no_url = "no database configured (no --database-url or DATABASE_URL)";
    if spec.volume.is_some() || spec.datadir.is_some() {
        return crate::error::usage(format!(
            "{no_url}, and a --volume/--datadir target has no server to connect to — pass --database-url, or name the container"
        ));
    }
    let engine = docker::connect().await.map_err(|e| {
        UsageError(format!(
            "{no_url}, and ward cannot reach Docker to find the Postgres container ({e:#}) — pass --database-url URL or set DATABASE_URL"
        ))
    })?;
    let name = container_name(&engine, spec, cwd).await.map_err(|e| {
        UsageError(format!(
            "{no_url}: {e:#} (or pass --database-url URL / set DATABASE_URL)"
        ))
    })?;
    let container = docker::inspect_container(&engine, &name).await?.ok_or_else(|| {
        UsageError(format!(
            "{no_url}, and there is no container named {name:?} — check `docker ps -a`, or pass --database-url"
        ))
    })?;
    if !container.running {
        return crate::error::usage(format!(
            "container {name} is not running — start it (`docker start {name}` or `docker compose up -d`), or pass --database-url"
        ));
    }
    container_url(&container)
}

/// A URL for the database of a container, through its published port on
/// the loopback interface, as the official image's environment describes it.
pub(crate) fn container_url(c: &ContainerFacts) -> Result<String> {
    let port = c.published_port.ok_or_else(|| {
        UsageError(format!(
            "container {} publishes no port for 5432, so ward cannot reach its database — publish one \
             (compose: ports: [\"127.0.0.1:5432:5432\"]) or pass --database-url",
            c.name
        ))
    })?;
    let user = c
        .env
        .get("POSTGRES_USER")
        .map_or("postgres", String::as_str);
    let db = c.env.get("POSTGRES_DB").map_or(user, String::as_str);
    Ok(crate::pg::tcp_url(crate::pg::UrlParts {
        user,
        password: c.env.get("POSTGRES_PASSWORD").map(String::as_str),
        host: "127.0.0.1",
        port,
        database: db,
    }))
}
