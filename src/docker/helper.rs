//! The containers ward creates for its own work — `sleep infinity` helpers
//! that move data in and out of volumes, and throwaway Postgres servers on a
//! copy of real data — and the sweep that removes what a killed ward left.
//!
//! Everything created here is labelled with the owning ward's pid and host,
//! so the next ward invocation of any kind can remove it after a `kill -9`.
//! A throwaway server that publishes a port gets a bridge network of its own:
//! the engine isolates bridges from each other, so no other container can
//! reach the copy's data on a bridge address.

use crate::process::start_time;
use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkCreateRequest,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder,
};

use super::client::{Docker, blocking, bounded, is_not_found};
use super::containers::{image_exists, remove_container, start_container};
use super::volumes::remove_volume;

/// Label on every container, volume and network ward creates for its own work.
pub const HELPER_LABEL: &str = "ward.helper";

/// A unique name for something ward creates.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let x = t ^ ((std::process::id() as u64) << 32) ^ N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:012x}", x & 0xffff_ffff_ffff)
}

/// A short-lived container ward created (a helper or a throwaway server),
/// with the private network it may sit on. Removed when dropped (also on
/// error, panic and Ctrl-C).
#[derive(Debug)]
pub struct Helper {
    pub name: String,
    /// The bridge network created for this container alone, if any.
    network: Option<String>,
    removed: bool,
}

/// How [`Helper::start_postgres`] runs the server.
#[derive(Debug, Clone, Default)]
pub struct PostgresServer {
    /// The container's name is this plus a unique suffix.
    pub name_prefix: String,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// The command for the image's entrypoint (None: the image's CMD).
    pub cmd: Option<Vec<String>>,
    /// Publish 5432 on an ephemeral port of 127.0.0.1, from a bridge network
    /// of the server's own (otherwise networking is off).
    pub publish: bool,
}

impl Helper {
    /// Creates and starts `sleep infinity` in `image` (never pulled) with `volume`
    /// mounted at `dest`. Runs as root so it can read and chown everything.
    pub async fn start(
        docker: &Docker,
        image: &str,
        volume: &str,
        dest: &str,
        read_only: bool,
    ) -> Result<Helper> {
        Self::sleeper(docker, image, (volume, dest), read_only, None).await
    }

    /// [`Helper::start`] (read-write) with a second volume mounted at
    /// `extra_dest` — for moving data between two volumes.
    pub async fn start_two(
        docker: &Docker,
        image: &str,
        volume: &str,
        dest: &str,
        extra_volume: &str,
        extra_dest: &str,
    ) -> Result<Helper> {
        let extra = Some((extra_volume, extra_dest));
        Self::sleeper(docker, image, (volume, dest), false, extra).await
    }

    /// The one way helpers are made: a root `sleep infinity`, networking off.
    async fn sleeper(
        docker: &Docker,
        image: &str,
        (volume, dest): (&str, &str),
        read_only: bool,
        extra_mount: Option<(&str, &str)>,
    ) -> Result<Helper> {
        let spec = HelperSpec {
            image,
            volume,
            dest,
            name_prefix: "ward-helper",
            missing_hint: " (for tests: .ci/test-image.sh)",
            what: "helper container",
            read_only: Some(read_only),
            port_bindings: None,
            extra_mount,
            body: ContainerCreateBody {
                entrypoint: Some(vec!["sleep".into()]),
                cmd: Some(vec!["infinity".into()]),
                user: Some("0:0".into()),
                network_disabled: Some(true),
                ..Default::default()
            },
        };
        create_and_start(docker, spec).await
    }

    /// Creates and starts a throwaway Postgres server of `image` on `volume`
    /// mounted at `dest`, labelled as a helper. The image's own entrypoint runs
    /// `cmd` (None: the image's CMD). Networking stays off unless `publish`,
    /// which puts 5432 on an ephemeral port of 127.0.0.1 only — never on
    /// other interfaces, as the copy holds real data — from a bridge network
    /// of its own, out of other containers' reach.
    pub async fn start_postgres(
        docker: &Docker,
        image: &str,
        volume: &str,
        dest: &str,
        server: PostgresServer,
    ) -> Result<Helper> {
        let port_bindings = server.publish.then(|| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                // Empty: the engine picks a free port.
                host_port: Some(String::new()),
            };
            HashMap::from([("5432/tcp".to_string(), Some(vec![binding]))])
        });
        let spec = HelperSpec {
            image,
            volume,
            dest,
            name_prefix: &server.name_prefix,
            missing_hint: "",
            what: "a throwaway Postgres container",
            read_only: None,
            port_bindings,
            extra_mount: None,
            body: ContainerCreateBody {
                env: Some(server.env),
                cmd: server.cmd,
                network_disabled: Some(!server.publish),
                // Published ports need the port exposed (official images
                // EXPOSE 5432, but ward does not rely on it).
                exposed_ports: server.publish.then(|| vec!["5432/tcp".to_string()]),
                ..Default::default()
            },
        };
        create_and_start(docker, spec).await
    }

    /// Removes the container, then its private network.
    pub async fn remove(mut self, docker: &Docker) -> Result<()> {
        self.removed = true;
        remove_container(docker, &self.name).await?;
        match &self.network {
            Some(network) => remove_network(docker, network).await,
            None => Ok(()),
        }
    }
}

/// What differs between the containers [`Helper`] creates; the rest — the
/// image check, a unique name, the helper labels, the one volume mount and no
/// logging — is the same for all of them, in [`create_and_start`].
struct HelperSpec<'a> {
    image: &'a str,
    volume: &'a str,
    dest: &'a str,
    name_prefix: &'a str,
    /// Appended to the "image is not present" message.
    missing_hint: &'a str,
    /// What is being created, for the error's context.
    what: &'a str,
    /// `None` leaves the engine's default.
    read_only: Option<bool>,
    /// Published ports; any puts the container on a private network.
    port_bindings: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    /// A second volume and where to mount it (read-write).
    extra_mount: Option<(&'a str, &'a str)>,
    /// Command, user, environment and networking.
    body: ContainerCreateBody,
}

async fn create_and_start(docker: &Docker, spec: HelperSpec<'_>) -> Result<Helper> {
    let image = spec.image;
    if !image_exists(docker, image).await? {
        return Err(crate::error::UsageError(format!(
            "image {image} is not present locally and ward never pulls images — \
             pull or build it first{}",
            spec.missing_hint
        ))
        .into());
    }
    sweep_orphans(docker).await;
    // From here on, dropping `helper` removes whatever was created.
    let mut helper = Helper {
        name: unique_name(spec.name_prefix),
        network: None,
        removed: false,
    };
    if spec.port_bindings.is_some() {
        create_network(docker, &helper.name).await?;
        helper.network = Some(helper.name.clone());
    }
    let mounts = std::iter::once((spec.volume, spec.dest, spec.read_only))
        .chain(spec.extra_mount.map(|(v, d)| (v, d, Some(false))))
        .map(|(volume, dest, read_only)| Mount {
            target: Some(dest.to_string()),
            source: Some(volume.to_string()),
            typ: Some(MountType::VOLUME),
            read_only,
            ..Default::default()
        })
        .collect();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(helper_labels()),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            port_bindings: spec.port_bindings,
            network_mode: helper.network.clone(),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..spec.body
    };
    let what = format!("creating {} from {image}", spec.what);
    let opts = CreateContainerOptionsBuilder::new()
        .name(&helper.name)
        .build();
    bounded(&what, docker.create_container(Some(opts), body))
        .await?
        .context(what)?;
    start_container(docker, &helper.name).await?;
    Ok(helper)
}

/// A bridge network for one container: reachable from the host (the
/// 127.0.0.1 port mapping), isolated by the engine from the default bridge
/// and every other network.
async fn create_network(docker: &Docker, name: &str) -> Result<()> {
    let what = format!("creating network {name}");
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(helper_labels()),
        ..Default::default()
    };
    bounded(&what, docker.create_network(request))
        .await?
        .context(what)?;
    Ok(())
}

async fn remove_network(docker: &Docker, name: &str) -> Result<()> {
    let what = format!("removing network {name}");
    match bounded(&what, docker.remove_network(name)).await? {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).context(what),
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.removed {
            let name = self.name.clone();
            let network = self.network.clone();
            blocking(move |d| async move {
                remove_container(&d, &name).await?;
                match network {
                    Some(network) => remove_network(&d, &network).await,
                    None => Ok(()),
                }
            });
        }
    }
}

/// Labels of a helper: what it is, and which ward process (on which host) owns it.
pub(super) fn helper_labels() -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(HELPER_LABEL.to_string(), "1".to_string());
    labels.insert("ward.pid".to_string(), std::process::id().to_string());
    labels.insert("ward.host".to_string(), hostname());
    if let Some(start) = start_time(std::process::id()) {
        labels.insert(START_LABEL.to_string(), start.to_string());
    }
    if let Some(namespace) = pid_namespace() {
        labels.insert(PIDNS_LABEL.to_string(), namespace);
    }
    labels
}

/// The owning ward's start time (clock ticks since boot): a pid alone is
/// reused, so the sweep compares it as journals' `Owner` does.
const START_LABEL: &str = "ward.pid_start";
/// The owning ward's pid namespace: a ward in another one (a container with
/// the host's name) sees other pids, so the sweep cannot judge its helpers.
const PIDNS_LABEL: &str = "ward.pidns";

/// This process's pid namespace, e.g. `pid:[4026531836]`.
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Removes helper containers whose ward process (on this host) has died, e.g.
/// after a `kill -9`, then their volumes and networks. Helpers of live ward
/// processes are left alone. Best effort: an engine that fails to answer
/// leaves the rest for the next sweep.
pub async fn sweep_orphans(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![format!("{HELPER_LABEL}=1")])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    if let Ok(Ok(list)) = bounded("listing helpers", docker.list_containers(Some(opts))).await {
        for c in list {
            if orphaned(&c.labels.unwrap_or_default())
                && let Some(id) = c.id
            {
                tracing::info!("removing helper container {id} left by a ward that was killed");
                let _ = remove_container(docker, &id).await;
            }
        }
    }
    // Then the throwaway volumes and networks (free only once their container is gone).
    let opts = ListVolumesOptionsBuilder::new().filters(&filters).build();
    if let Ok(Ok(list)) = bounded("listing volumes", docker.list_volumes(Some(opts))).await {
        for v in list.volumes.unwrap_or_default() {
            if orphaned(&v.labels) {
                tracing::info!("removing throwaway volume {} left by a killed ward", v.name);
                let _ = remove_volume(docker, &v.name).await;
            }
        }
    }
    let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
    if let Ok(Ok(list)) = bounded("listing networks", docker.list_networks(Some(opts))).await {
        for n in list {
            if let Some(name) = n.name
                && orphaned(&n.labels.unwrap_or_default())
            {
                tracing::info!("removing throwaway network {name} left by a killed ward");
                let _ = remove_network(docker, &name).await;
            }
        }
    }
}

/// Sweeps what killed wards of this host left behind — throwaway servers
/// still serving a copy of real data, helpers, volumes, networks — if the
/// engine answers within a few seconds; every ward invocation calls it
/// first, so a `kill -9` is cleaned up by the next command of any kind.
/// Silent when there is no engine.
pub async fn sweep_if_reachable() {
    let Ok(docker) = Docker::connect_with_defaults() else {
        return;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        if let Ok(d) = docker.negotiate_version().await {
            sweep_orphans(&d).await;
        }
    })
    .await;
}

/// Made by a ward process of this host that no longer runs. Without a
/// `/proc` to ask (not Linux, or hidden), nothing counts as orphaned.
fn orphaned(labels: &HashMap<String, String>) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    orphaned_seen_from(labels, &hostname(), pid_namespace().as_deref())
}

/// The sweep's decision, judged from a process on `host` in the pid
/// namespace `namespace`. Labels of older wards (no start time or
/// namespace) are judged by pid and host alone, as before.
fn orphaned_seen_from(
    labels: &HashMap<String, String>,
    host: &str,
    namespace: Option<&str>,
) -> bool {
    let (Some(pid), Some(label_host)) = (labels.get("ward.pid"), labels.get("ward.host")) else {
        return false;
    };
    if label_host != host {
        return false;
    }
    if let (Some(theirs), Some(ours)) = (labels.get(PIDNS_LABEL), namespace)
        && theirs != ours
    {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return true;
    }
    match (
        labels.get(START_LABEL).and_then(|s| s.parse::<u64>().ok()),
        start_time(pid),
    ) {
        // The pid is alive but started at another time: reused, the owner is gone.
        (Some(recorded), Some(now)) => recorded != now,
        // No start time recorded (an older ward) or unreadable: the pid
        // exists, so assume it is the owner.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_judges_pid_start_time_host_and_pid_namespace() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let host = hostname();
        let ours = pid_namespace();
        let ours = ours.as_deref();
        let mut labels = HashMap::from([
            ("ward.pid".to_string(), pid.to_string()),
            ("ward.host".to_string(), host.clone()),
            (
                START_LABEL.to_string(),
                start_time(pid).unwrap().to_string(),
            ),
            (PIDNS_LABEL.to_string(), ours.unwrap().to_string()),
        ]);
        assert!(!orphaned_seen_from(&labels, &host, ours), "a live owner");
        let reused = start_time(pid).unwrap() + 1;
        labels.insert(START_LABEL.to_string(), reused.to_string());
        assert!(orphaned_seen_from(&labels, &host, ours), "a reused pid");
        assert!(
            !orphaned_seen_from(&labels, "other-host.invalid", ours),
            "another host: cannot tell"
        );
        assert!(
            !orphaned_seen_from(&labels, &host, Some("pid:[1]")),
            "another pid namespace: cannot tell"
        );
        let mut old = labels.clone();
        old.remove(START_LABEL);
        old.remove(PIDNS_LABEL);
        assert!(
            !orphaned_seen_from(&old, &host, ours),
            "old labels: pid alive"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            orphaned_seen_from(&labels, &host, ours),
            "the owner is gone"
        );
        assert!(
            orphaned_seen_from(&old, &host, ours),
            "old labels: pid gone"
        );
        let mut elsewhere = labels.clone();
        elsewhere.insert(PIDNS_LABEL.to_string(), "pid:[1]".to_string());
        assert!(
            !orphaned_seen_from(&elsewhere, &host, ours),
            "a pid missing here may live in another namespace"
        );
    }
}
