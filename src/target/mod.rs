//! "Which database?" for `ward snapshot`: a container, a compose service, a
//! bare volume (with an image for the helper) or a native data directory,
//! resolved from flags, then `ward.toml`, then — with nothing given — the one
//! Postgres container of the current compose project.
//!
//! Everything about the layout is read from Docker, never assumed: PGDATA from
//! the container's environment, the volume that holds it from its mounts, and
//! the path of PGDATA inside that volume (PG 18 images mount
//! `/var/lib/postgresql` and keep PGDATA in `18/docker`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use crate::docker::{self, ContainerFacts, Docker, VolumeFacts};
use crate::error::UsageError;

mod compose;
mod facts;
mod url;

use compose::container_name;
pub(crate) use facts::SourceFacts;
pub(crate) use url::container_url;
pub(crate) use url::database_url;

/// Which database a command works on: a container, a compose service, a
/// volume (with the image for its helpers) or a native data directory. One
/// struct for the command-line flags (flattened into the snapshot and backup
/// verbs) and for `[snapshot]` / `[backup]` in `ward.toml` (flattened there);
/// `config` merges the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Deserialize)]
pub(crate) struct TargetSpec {
    /// A container by name.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// A docker-compose service (found by its com.docker.compose.* labels).
    #[arg(long, value_name = "SERVICE")]
    pub compose_service: Option<String>,
    /// The compose project (default: the current directory's, or COMPOSE_PROJECT_NAME).
    #[arg(long, value_name = "PROJECT")]
    pub compose_project: Option<String>,
    /// A named volume holding PGDATA (needs --image).
    #[arg(long, value_name = "NAME")]
    pub volume: Option<String>,
    /// The Postgres image for helper containers of a --volume target (never pulled).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// A native Postgres data directory (the server must be stopped).
    #[arg(long, value_name = "PATH")]
    pub datadir: Option<PathBuf>,
}

impl TargetSpec {
    /// Whether a target is named (a compose project or an image alone is not one).
    pub(crate) fn names_target(&self) -> bool {
        self.container.is_some()
            || self.compose_service.is_some()
            || self.volume.is_some()
            || self.datadir.is_some()
    }
}

/// A Postgres data directory inside a Docker volume.
#[derive(Debug, Clone)]
pub struct VolumeTarget {
    /// The container using the volume (absent for `--volume`).
    pub container: Option<ContainerFacts>,
    pub volume: VolumeFacts,
    /// Image for helper containers: the container's own image, or `--image`.
    pub image: String,
    /// Where the volume is mounted in the container (e.g. /var/lib/postgresql/data).
    pub mount: String,
    /// PGDATA inside the container.
    pub pgdata: String,
    /// PGDATA relative to the volume root ("" when they coincide).
    pub pgdata_rel: String,
}

/// A resolved target.
#[derive(Debug, Clone)]
pub enum Target {
    Volume(Box<VolumeTarget>),
    Datadir(PathBuf),
}

impl Target {
    /// A short description for messages and default snapshot names.
    pub fn describe(&self) -> String {
        match self {
            Target::Volume(v) => match &v.container {
                Some(c) => format!("container {} (volume {})", c.name, v.volume.name),
                None => format!("volume {}", v.volume.name),
            },
            Target::Datadir(p) => format!("data directory {}", p.display()),
        }
    }

    /// A name stem for snapshots of this target.
    pub fn stem(&self) -> String {
        let raw = match self {
            Target::Volume(v) => match &v.container {
                Some(c) => c
                    .compose_service()
                    .map(str::to_string)
                    .unwrap_or_else(|| c.name.clone()),
                None => v.volume.name.clone(),
            },
            Target::Datadir(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "datadir".into()),
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// Resolves what the user asked for into a target.
pub(crate) async fn resolve(spec: &TargetSpec, cwd: &Path) -> Result<Target> {
    if let Some(dir) = &spec.datadir {
        if spec.container.is_some() || spec.compose_service.is_some() || spec.volume.is_some() {
            return crate::error::usage(
                "--datadir cannot be combined with --container, --compose-service or --volume — pick one target",
            );
        }
        let dir = if dir.is_absolute() {
            dir.clone()
        } else {
            cwd.join(dir)
        };
        if !dir.join("PG_VERSION").is_file() {
            return crate::error::usage(format!(
                "{} is not a Postgres data directory (no PG_VERSION file) — pass the directory initdb created",
                dir.display()
            ));
        }
        return Ok(Target::Datadir(dir));
    }
    let engine = docker::connect().await.map_err(|e| {
        UsageError(format!(
            "{e:#} — ward needs the Docker engine for container and volume targets"
        ))
    })?;
    if let Some(volume) = &spec.volume {
        if spec.container.is_some() || spec.compose_service.is_some() {
            return crate::error::usage(
                "--volume cannot be combined with --container or --compose-service — pick one target",
            );
        }
        return resolve_volume(&engine, volume, spec.image.as_deref()).await;
    }
    let name = container_name(&engine, spec, cwd).await?;
    resolve_container(&engine, &name, spec.image.as_deref()).await
}

async fn resolve_container(d: &Docker, name: &str, image: Option<&str>) -> Result<Target> {
    let container = docker::inspect_container(d, name).await?.ok_or_else(|| {
        UsageError(format!(
            "no container named {name:?} — check `docker ps -a` for its name"
        ))
    })?;
    let pgdata = container
        .env
        .get("PGDATA")
        .cloned()
        .unwrap_or_else(|| "/var/lib/postgresql/data".into());
    // The volume whose mount point is PGDATA or its closest parent.
    let best = container
        .volumes
        .iter()
        .filter(|(_, dest)| within(&pgdata, dest).is_some())
        .max_by_key(|(_, dest)| dest.len())
        .cloned();
    let Some((vol, mount)) = best else {
        let bind = container
            .binds
            .iter()
            .find(|(_, dest)| within(&pgdata, dest).is_some());
        return crate::error::usage(match bind {
            Some((src, _)) => format!(
                "PGDATA {pgdata} of container {name} is a bind mount of {src}, not a named volume — \
                 stop the container and use --datadir {src}"
            ),
            None => format!(
                "PGDATA {pgdata} of container {name} is not on a named volume (its data lives in the \
                 container's own layer) — mount a volume there first"
            ),
        });
    };
    let volume = docker::inspect_volume(d, &vol)
        .await?
        .ok_or_else(|| UsageError(format!("volume {vol} of container {name} has gone")))?;
    let pgdata_rel = within(&pgdata, &mount).unwrap_or_default();
    Ok(Target::Volume(Box::new(VolumeTarget {
        image: image
            .map(str::to_string)
            .unwrap_or_else(|| container.image.clone()),
        container: Some(container),
        volume,
        mount,
        pgdata,
        pgdata_rel,
    })))
}

async fn resolve_volume(d: &Docker, name: &str, image: Option<&str>) -> Result<Target> {
    let Some(image) = image else {
        return crate::error::usage(format!(
            "--volume {name} needs --image IMAGE: the Postgres image whose helper containers read \
             and write it (ward never pulls; use the image the database runs on)"
        ));
    };
    let volume = docker::inspect_volume(d, name).await?.ok_or_else(|| {
        UsageError(format!(
            "no volume named {name:?} — check `docker volume ls`"
        ))
    })?;
    let (env, declared) = docker::image_config(d, image).await?.ok_or_else(|| {
        UsageError(format!(
            "image {image} is not present locally and ward never pulls images — pull or build it first"
        ))
    })?;
    let pgdata = env
        .get("PGDATA")
        .cloned()
        .unwrap_or_else(|| "/var/lib/postgresql/data".into());
    let mount = declared
        .iter()
        .filter(|v| within(&pgdata, v).is_some())
        .max_by_key(|v| v.len())
        .cloned()
        .unwrap_or_else(|| pgdata.clone());
    let pgdata_rel = within(&pgdata, &mount).unwrap_or_default();
    Ok(Target::Volume(Box::new(VolumeTarget {
        container: None,
        volume,
        image: image.to_string(),
        mount,
        pgdata,
        pgdata_rel,
    })))
}

/// `path` relative to `base` when it is `base` or below it.
fn within(path: &str, base: &str) -> Option<String> {
    let p = path.trim_end_matches('/');
    let b = base.trim_end_matches('/');
    if p == b {
        return Some(String::new());
    }
    p.strip_prefix(b)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgdata_inside_the_volume() {
        assert_eq!(
            within("/var/lib/postgresql/data", "/var/lib/postgresql/data"),
            Some(String::new())
        );
        assert_eq!(
            within("/var/lib/postgresql/18/docker", "/var/lib/postgresql"),
            Some("18/docker".into())
        );
        assert_eq!(within("/var/lib/postgresql2", "/var/lib/postgresql"), None);
    }
}
