//! Containers and images: what ward reads about them, and stopping,
//! starting and removing containers — each call bounded (see `client`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use serde::Serialize;

use super::client::{Docker, bounded, bounded_for, call_timeout, is_not_found, is_not_modified};

/// Compose labels ward reads (and keeps on volumes).
pub(crate) const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub(crate) const COMPOSE_SERVICE: &str = "com.docker.compose.service";

/// What ward needs to know about a container.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ContainerFacts {
    pub id: String,
    pub name: String,
    /// The image as configured (e.g. `postgres:15`).
    pub image: String,
    /// The image id (`sha256:…`), a content digest of the image config.
    pub image_id: String,
    /// Repo digests of the image, when it came from a registry.
    pub repo_digests: Vec<String>,
    pub env: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// Named volumes mounted into the container: (volume name, destination).
    pub volumes: Vec<(String, String)>,
    /// Bind mounts: (host path, destination).
    pub binds: Vec<(String, String)>,
    /// The host port that 5432/tcp is published on, if any.
    #[serde(default)]
    pub published_port: Option<u16>,
}

impl ContainerFacts {
    pub fn compose_project(&self) -> Option<&str> {
        self.labels.get(COMPOSE_PROJECT).map(String::as_str)
    }
    pub fn compose_service(&self) -> Option<&str> {
        self.labels.get(COMPOSE_SERVICE).map(String::as_str)
    }
}

/// Inspects a container; `Ok(None)` when there is none of that name.
pub(crate) async fn inspect_container(
    docker: &Docker,
    name: &str,
) -> Result<Option<ContainerFacts>> {
    let what = format!("inspecting container {name}");
    let c = match bounded(&what, docker.inspect_container(name, None)).await? {
        Ok(c) => c,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e).context(what),
    };
    let config = c.config.unwrap_or_default();
    let env = env_map(config.env);
    let mut volumes = Vec::new();
    let mut binds = Vec::new();
    for m in c.mounts.unwrap_or_default() {
        let dest = m.destination.unwrap_or_default();
        match m.typ.as_deref() {
            Some("volume") => volumes.push((m.name.unwrap_or_default(), dest)),
            Some("bind") => binds.push((m.source.unwrap_or_default(), dest)),
            _ => {}
        }
    }
    let published_port = c
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .and_then(|p| p.get("5432/tcp").cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port?.parse().ok()));
    let image_id = c.image.unwrap_or_default();
    let repo_digests = match bounded(&what, docker.inspect_image(&image_id)).await? {
        Ok(img) => img.repo_digests.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Ok(Some(ContainerFacts {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        image_id,
        repo_digests,
        env,
        labels: config.labels.unwrap_or_default(),
        running: c.state.and_then(|s| s.running).unwrap_or(false),
        volumes,
        binds,
        published_port,
    }))
}

/// Names of containers (running or not) carrying all `labels` (`key=value` or `key`).
pub(crate) async fn containers_with_labels(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<String>> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("label".into(), labels.to_vec());
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = bounded("listing containers", docker.list_containers(Some(opts)))
        .await?
        .context("listing containers")?;
    let mut names: Vec<String> = list
        .into_iter()
        .filter_map(|c| {
            c.names?
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Whether an image exists locally (ward never pulls).
pub(crate) async fn image_exists(docker: &Docker, image: &str) -> Result<bool> {
    let what = format!("inspecting image {image}");
    match bounded(&what, docker.inspect_image(image)).await? {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e).context(what),
    }
}

/// Stops a container with a timeout (seconds) and waits until it has exited.
/// Returns the exit code.
pub(crate) async fn stop_container(docker: &Docker, name: &str, timeout_s: u32) -> Result<i64> {
    let opts = StopContainerOptionsBuilder::new()
        .t(timeout_s.min(i32::MAX as u32) as i32)
        .build();
    let what = format!("stopping container {name}");
    // The request lasts as long as the stop: give it the grace period too.
    let limit = Duration::from_secs(u64::from(timeout_s)) + call_timeout();
    match bounded_for(limit, &what, docker.stop_container(name, Some(opts))).await? {
        Ok(()) => {}
        Err(e) if is_not_modified(&e) => {} // already stopped
        Err(e) => return Err(e).context(what),
    }
    let what = format!("inspecting container {name} after stopping it");
    let c = bounded(&what, docker.inspect_container(name, None))
        .await?
        .context(what)?;
    let state = c.state.unwrap_or_default();
    if state.running.unwrap_or(false) {
        anyhow::bail!("container {name} is still running after `docker stop -t {timeout_s}`");
    }
    Ok(state.exit_code.unwrap_or(0))
}

pub(crate) async fn start_container(docker: &Docker, name: &str) -> Result<()> {
    let what = format!("starting container {name}");
    match bounded(&what, docker.start_container(name, None)).await? {
        Ok(()) => Ok(()),
        Err(e) if is_not_modified(&e) => Ok(()),
        Err(e) => Err(e).context(what),
    }
}

/// Whether a container is running now.
pub(crate) async fn is_running(docker: &Docker, name: &str) -> Result<bool> {
    let what = format!("inspecting container {name}");
    let c = bounded(&what, docker.inspect_container(name, None))
        .await?
        .context(what)?;
    Ok(c.state.and_then(|s| s.running).unwrap_or(false))
}

/// Removes a container (forcefully); missing is fine.
pub(crate) async fn remove_container(docker: &Docker, name: &str) -> Result<()> {
    // v: also remove the anonymous volume the image's VOLUME line gives every
    // helper (named volumes are never removed by this).
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let what = format!("removing container {name}");
    match bounded(&what, docker.remove_container(name, Some(opts))).await? {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).context(what),
    }
}

/// `KEY=value` entries (as the engine reports a config's environment) as a map.
fn env_map(env: Option<Vec<String>>) -> HashMap<String, String> {
    env.unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            // Hidden from every log line and error from now on.
            if crate::redact::is_secret_name(k) {
                crate::redact::register(v);
            }
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The image's config; `Ok(None)` when there is no such image.
async fn image_settings(
    docker: &Docker,
    image: &str,
) -> Result<Option<bollard::models::ImageConfig>> {
    let what = format!("inspecting image {image}");
    match bounded(&what, docker.inspect_image(image)).await? {
        Ok(img) => Ok(Some(img.config.unwrap_or_default())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).context(what),
    }
}

/// Environment and declared volumes of an image.
pub(crate) async fn image_config(
    docker: &Docker,
    image: &str,
) -> Result<Option<(HashMap<String, String>, Vec<String>)>> {
    let Some(config) = image_settings(docker, image).await? else {
        return Ok(None);
    };
    let env = env_map(config.env);
    let mut volumes: Vec<String> = config.volumes.unwrap_or_default().into_iter().collect();
    volumes.sort();
    Ok(Some((env, volumes)))
}

/// Entrypoint and command (CMD) of an image; `Ok(None)` when it is absent.
pub(crate) async fn image_command(
    docker: &Docker,
    image: &str,
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let Some(config) = image_settings(docker, image).await? else {
        return Ok(None);
    };
    Ok(Some((
        config.entrypoint.unwrap_or_default(),
        config.cmd.unwrap_or_default(),
    )))
}
