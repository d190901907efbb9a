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
use serde::{Deserialize, Serialize};

use crate::docker::{self, ContainerFacts, Docker, VolumeFacts};
use crate::error::UsageError;

/// What the user asked for (flags merged over `ward.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub container: Option<String>,
    pub compose_service: Option<String>,
    pub compose_project: Option<String>,
    pub volume: Option<String>,
    pub image: Option<String>,
    pub datadir: Option<PathBuf>,
}

impl TargetSpec {
    /// Fields of `self` win; the rest come from `other` — but only if `self`
    /// names no target at all (a flag target replaces the file's target).
    pub fn or(self, other: &TargetSpec) -> TargetSpec {
        if self.names_target() {
            TargetSpec {
                compose_project: self
                    .compose_project
                    .clone()
                    .or_else(|| other.compose_project.clone()),
                image: self.image.clone().or_else(|| other.image.clone()),
                ..self
            }
        } else {
            TargetSpec {
                compose_project: self
                    .compose_project
                    .clone()
                    .or_else(|| other.compose_project.clone()),
                ..other.clone()
            }
        }
    }

    pub fn names_target(&self) -> bool {
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

/// Serialisable facts of where a snapshot came from (for the manifest).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceFacts {
    pub kind: String,
    pub container: Option<String>,
    pub image: Option<String>,
    pub image_id: Option<String>,
    pub repo_digests: Vec<String>,
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
    pub volume: Option<String>,
    pub volume_driver: Option<String>,
    pub volume_labels: std::collections::BTreeMap<String, String>,
    pub volume_options: std::collections::BTreeMap<String, String>,
    pub mount: Option<String>,
    pub datadir: Option<String>,
    /// The superuser role the image was initialised with (POSTGRES_USER), not a secret.
    #[serde(default)]
    pub postgres_user: Option<String>,
    /// For a data directory: the OS user that owned it. initdb names the
    /// bootstrap superuser after the user that runs it (unless `-U`), so
    /// this is the first guess for the role of a throwaway copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadir_owner: Option<String>,
}

impl Target {
    pub fn source_facts(&self) -> SourceFacts {
        match self {
            Target::Volume(v) => SourceFacts {
                kind: "docker-volume".into(),
                container: v.container.as_ref().map(|c| c.name.clone()),
                image: Some(v.image.clone()),
                image_id: v.container.as_ref().map(|c| c.image_id.clone()),
                repo_digests: v
                    .container
                    .as_ref()
                    .map(|c| c.repo_digests.clone())
                    .unwrap_or_default(),
                compose_project: v
                    .container
                    .as_ref()
                    .and_then(|c| c.compose_project().map(str::to_string)),
                compose_service: v
                    .container
                    .as_ref()
                    .and_then(|c| c.compose_service().map(str::to_string)),
                volume: Some(v.volume.name.clone()),
                volume_driver: Some(v.volume.driver.clone()),
                volume_labels: v.volume.labels.clone().into_iter().collect(),
                // Names only where the value may be a secret (a CIFS
                // password): manifests are files anyone with the store reads.
                volume_options: v
                    .volume
                    .options
                    .iter()
                    .map(|(k, val)| {
                        let shown = if crate::redact::is_secret_name(k) {
                            "(redacted)".to_string()
                        } else {
                            crate::redact::text(val)
                        };
                        (k.clone(), shown)
                    })
                    .collect(),
                mount: Some(v.mount.clone()),
                datadir: None,
                postgres_user: v
                    .container
                    .as_ref()
                    .and_then(|c| c.env.get("POSTGRES_USER").cloned()),
                datadir_owner: None,
            },
            Target::Datadir(p) => SourceFacts {
                kind: "datadir".into(),
                datadir: Some(p.display().to_string()),
                ..Default::default()
            },
        }
    }
}

/// The compose project of a directory, as compose names it: `COMPOSE_PROJECT_NAME`,
/// else the directory's name lower-cased with only `[a-z0-9_-]` kept.
pub fn default_compose_project(dir: &Path) -> String {
    compose_project(std::env::var("COMPOSE_PROJECT_NAME").ok(), dir)
}

/// Compose's rule, apart from the environment so tests can state both cases:
/// a non-empty `COMPOSE_PROJECT_NAME` wins, else the directory's name in
/// lower case without the characters Compose drops.
fn compose_project(from_environment: Option<String>, dir: &Path) -> String {
    if let Some(name) = from_environment.filter(|name| !name.is_empty()) {
        return name;
    }
    dir.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn looks_like_postgres(c: &ContainerFacts) -> bool {
    c.env.contains_key("PGDATA") || c.env.contains_key("PG_MAJOR") || c.image.contains("postgres")
}

/// Resolves what the user asked for into a target.
pub async fn resolve(spec: &TargetSpec, cwd: &Path) -> Result<Target> {
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
    let d = docker::connect().await.map_err(|e| {
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
        return resolve_volume(&d, volume, spec.image.as_deref()).await;
    }
    let name = container_name(&d, spec, cwd).await?;
    resolve_container(&d, &name, spec.image.as_deref()).await
}

/// The container a (non-volume, non-datadir) target names: `--container`,
/// else the compose service's, else the one Postgres container of the
/// compose project.
async fn container_name(d: &Docker, spec: &TargetSpec, cwd: &Path) -> Result<String> {
    let name = if let Some(c) = &spec.container {
        if spec.compose_service.is_some() {
            return crate::error::usage(
                "--container and --compose-service both name a target — pick one",
            );
        }
        c.clone()
    } else {
        let project = spec
            .compose_project
            .clone()
            .unwrap_or_else(|| default_compose_project(cwd));
        let mut labels = vec![format!("{}={project}", docker::COMPOSE_PROJECT)];
        if let Some(s) = &spec.compose_service {
            labels.push(format!("{}={s}", docker::COMPOSE_SERVICE));
        }
        let names = docker::containers_with_labels(d, &labels).await?;
        let mut candidates = Vec::new();
        for n in names {
            if let Some(c) = docker::inspect_container(d, &n).await?
                && (spec.compose_service.is_some() || looks_like_postgres(&c))
            {
                candidates.push(c.name);
            }
        }
        match (candidates.len(), &spec.compose_service) {
            (1, _) => candidates.remove(0),
            (0, Some(s)) => {
                return crate::error::usage(format!(
                    "no container of compose service {s:?} in project {project:?} — is it created \
                     (`docker compose up -d`)? Use --compose-project if the project has another name"
                ));
            }
            (0, None) => {
                return crate::error::usage(format!(
                    "no target given and no Postgres container found in compose project {project:?} — \
                     pass --container NAME, --compose-service SERVICE, --volume NAME or --datadir PATH, \
                     or set [snapshot] container = \"…\" in ward.toml"
                ));
            }
            (_, _) => {
                return crate::error::usage(format!(
                    "several candidate containers in compose project {project:?} ({}) — pick one with --container",
                    candidates.join(", ")
                ));
            }
        }
    };
    Ok(name)
}

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
    let d = docker::connect().await.map_err(|e| {
        UsageError(format!(
            "{no_url}, and ward cannot reach Docker to find the Postgres container ({e:#}) — pass --database-url URL or set DATABASE_URL"
        ))
    })?;
    let name = container_name(&d, spec, cwd).await.map_err(|e| {
        UsageError(format!(
            "{no_url}: {e:#} (or pass --database-url URL / set DATABASE_URL)"
        ))
    })?;
    let c = docker::inspect_container(&d, &name).await?.ok_or_else(|| {
        UsageError(format!(
            "{no_url}, and there is no container named {name:?} — check `docker ps -a`, or pass --database-url"
        ))
    })?;
    if !c.running {
        return crate::error::usage(format!(
            "container {name} is not running — start it (`docker start {name}` or `docker compose up -d`), or pass --database-url"
        ));
    }
    container_url(&c)
}

/// A URL for the database of a container, through its published port on
/// the loopback interface, as the official image's environment describes it.
pub fn container_url(c: &ContainerFacts) -> Result<String> {
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

async fn resolve_container(d: &Docker, name: &str, image: Option<&str>) -> Result<Target> {
    let c = docker::inspect_container(d, name).await?.ok_or_else(|| {
        UsageError(format!(
            "no container named {name:?} — check `docker ps -a` for its name"
        ))
    })?;
    let pgdata = c
        .env
        .get("PGDATA")
        .cloned()
        .unwrap_or_else(|| "/var/lib/postgresql/data".into());
    // The volume whose mount point is PGDATA or its closest parent.
    let best = c
        .volumes
        .iter()
        .filter(|(_, dest)| within(&pgdata, dest).is_some())
        .max_by_key(|(_, dest)| dest.len())
        .cloned();
    let Some((vol, mount)) = best else {
        let bind = c
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
        image: image.map(str::to_string).unwrap_or_else(|| c.image.clone()),
        container: Some(c),
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

    #[test]
    fn compose_project_names_follow_compose() {
        let dir = Path::new("/src/My App.v2");
        assert_eq!(compose_project(None, dir), "myappv2");
        assert_eq!(compose_project(Some(String::new()), dir), "myappv2");
        assert_eq!(compose_project(Some("shop".into()), dir), "shop");
    }

    #[test]
    fn a_flag_target_replaces_the_file_target() {
        let file = TargetSpec {
            container: Some("db".into()),
            ..Default::default()
        };
        let flags = TargetSpec {
            volume: Some("v".into()),
            image: Some("postgres:15".into()),
            ..Default::default()
        };
        let t = flags.or(&file);
        assert_eq!(t.container, None);
        assert_eq!(t.volume.as_deref(), Some("v"));
        let t = TargetSpec::default().or(&file);
        assert_eq!(t.container.as_deref(), Some("db"));
    }
}
