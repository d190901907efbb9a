//! The containers ward creates for its own work — `sleep infinity` helpers
//! that move data in and out of volumes, and throwaway Postgres servers on a
//! copy of real data — and the sweep that removes what a killed ward left.
//!
//! Everything created here is labelled with the owning ward's pid and host
//! (`sweep.rs`), so the next ward invocation of any kind can remove it after
//! a `kill -9`.
//! A throwaway server that publishes a port gets a bridge network of its own:
//! the engine isolates bridges from each other, so no other container can
//! reach the copy's data on a bridge address.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkCreateRequest,
    PortBinding,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::client::{Docker, blocking, bounded, is_not_found};
use super::containers::{image_exists, remove_container, start_container};
use super::sweep::{helper_labels, sweep_orphans};

/// Label on every container, volume and network ward creates for its own work.
pub(crate) const HELPER_LABEL: &str = "ward.helper";

/// A unique name for something ward creates.
pub(crate) fn unique_name(prefix: &str) -> String {
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
pub(crate) struct Helper {
    pub name: String,
    /// The bridge network created for this container alone, if any.
    network: Option<String>,
    removed: bool,
}

/// How [`Helper::start_postgres`] runs the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct PostgresServer {
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
    pub(crate) async fn start(
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
    pub(crate) async fn start_two(
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
    pub(crate) async fn start_postgres(
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
    pub(crate) async fn remove(mut self, docker: &Docker) -> Result<()> {
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

pub(super) async fn remove_network(docker: &Docker, name: &str) -> Result<()> {
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
