//! The only module that talks to the Docker Engine (through bollard).
//!
//! ward negotiates the API version with the engine (Debian's docker.io speaks
//! 1.41, older than bollard's default) and never pulls an image.

use anyhow::{Context, Result};
pub use bollard::Docker;
use serde::Serialize;

/// The engine ward reached.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub engine_version: String,
    /// The API version ward and the engine agreed on.
    pub api_version: String,
    pub os: String,
}

/// Connects to the engine (DOCKER_HOST or the local socket) and negotiates the API version.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .context("cannot set up a Docker client (is DOCKER_HOST valid?)")?;
    // A socket that accepts but never answers must not hang ward.
    let limit = crate::pg::connect_timeout();
    match tokio::time::timeout(limit, docker.negotiate_version()).await {
        Ok(r) => {
            r.context("cannot reach the Docker engine — is it running, and may this user use it?")
        }
        Err(_) => crate::error::usage(format!(
            "the Docker engine did not answer within {}s — is DOCKER_HOST right and the engine \
             healthy? (WARD_CONNECT_TIMEOUT sets the limit)",
            limit.as_secs()
        )),
    }
}

pub async fn engine_info() -> Result<EngineInfo> {
    let docker = connect().await?;
    let v = docker
        .version()
        .await
        .context("asking the Docker engine for its version")?;
    let api = docker.client_version();
    Ok(EngineInfo {
        engine_version: v.version.unwrap_or_else(|| "unknown".into()),
        api_version: format!("{}.{}", api.major_version, api.minor_version),
        os: v.os.unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------
// Containers, volumes, helpers, exec and archives (used by `ward snapshot`).
// ---------------------------------------------------------------------------

use std::collections::HashMap;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// Label on every container ward creates for its own work.
pub const HELPER_LABEL: &str = "ward.helper";
/// Compose labels ward reads (and keeps on volumes).
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";

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

/// What ward needs to know about a volume.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VolumeFacts {
    pub name: String,
    pub driver: String,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Inspects a container; `Ok(None)` when there is none of that name.
pub async fn inspect_container(docker: &Docker, name: &str) -> Result<Option<ContainerFacts>> {
    let c = match docker.inspect_container(name, None).await {
        Ok(c) => c,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting container {name}")),
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
    let repo_digests = match docker.inspect_image(&image_id).await {
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
pub async fn containers_with_labels(docker: &Docker, labels: &[String]) -> Result<Vec<String>> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("label".into(), labels.to_vec());
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = docker
        .list_containers(Some(opts))
        .await
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

pub async fn inspect_volume(docker: &Docker, name: &str) -> Result<Option<VolumeFacts>> {
    match docker.inspect_volume(name).await {
        Ok(v) => Ok(Some(VolumeFacts {
            name: v.name,
            driver: v.driver,
            labels: v.labels,
            options: v.options,
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("inspecting volume {name}")),
    }
}

/// Creates a volume (used by tests and throwaway restores), labelled as given.
pub async fn create_volume(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<()> {
    docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating volume {name}"))?;
    Ok(())
}

pub async fn remove_volume(docker: &Docker, name: &str) -> Result<()> {
    match docker
        .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing volume {name}")),
    }
}

/// Whether an image exists locally (ward never pulls).
pub async fn image_exists(docker: &Docker, image: &str) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("inspecting image {image}")),
    }
}

/// Stops a container with a timeout (seconds) and waits until it has exited.
/// Returns the exit code.
pub async fn stop_container(docker: &Docker, name: &str, timeout_s: u32) -> Result<i64> {
    let opts = StopContainerOptionsBuilder::new()
        .t(timeout_s.min(i32::MAX as u32) as i32)
        .build();
    // The HTTP request lasts as long as the stop: give it room beyond `t`.
    let patient = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(u64::from(timeout_s) + 60));
    match patient.stop_container(name, Some(opts)).await {
        Ok(()) => {}
        // 304: already stopped.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => {}
        Err(e) => return Err(e).with_context(|| format!("stopping container {name}")),
    }
    let c = docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("inspecting container {name} after stopping it"))?;
    let state = c.state.unwrap_or_default();
    if state.running.unwrap_or(false) {
        anyhow::bail!("container {name} is still running after `docker stop -t {timeout_s}`");
    }
    Ok(state.exit_code.unwrap_or(0))
}

pub async fn start_container(docker: &Docker, name: &str) -> Result<()> {
    match docker.start_container(name, None).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("starting container {name}")),
    }
}

/// Whether a container is running now.
pub async fn is_running(docker: &Docker, name: &str) -> Result<bool> {
    let c = docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("inspecting container {name}"))?;
    Ok(c.state.and_then(|s| s.running).unwrap_or(false))
}

/// Removes a container (forcefully); missing is fine.
pub async fn remove_container(docker: &Docker, name: &str) -> Result<()> {
    // v: also remove the anonymous volume the image's VOLUME line gives every
    // helper (named volumes are never removed by this).
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing container {name}")),
    }
}

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

/// A short-lived helper container of a given image with one volume mounted.
/// Removed when dropped (also on error, panic and Ctrl-C).
#[derive(Debug)]
pub struct Helper {
    pub name: String,
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
    /// Publish 5432 on an ephemeral port of 127.0.0.1 (networking on).
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
        create_and_start(
            docker,
            HelperSpec {
                image,
                volume,
                dest,
                name_prefix: "ward-helper",
                missing_hint: " (for tests: .ci/test-image.sh)",
                what: "helper container",
                read_only: Some(read_only),
                port_bindings: None,
                extra_mount: None,
                body: ContainerCreateBody {
                    entrypoint: Some(vec!["sleep".into()]),
                    cmd: Some(vec!["infinity".into()]),
                    user: Some("0:0".into()),
                    network_disabled: Some(true),
                    ..Default::default()
                },
            },
        )
        .await
    }

    /// Creates and starts a throwaway Postgres server of `image` on `volume`
    /// mounted at `dest`, labelled as a helper. The image's own entrypoint runs
    /// `cmd` (None: the image's CMD). Networking stays off unless `publish`,
    /// which puts 5432 on an ephemeral port of 127.0.0.1 only — never on
    /// other interfaces, as the copy holds real data.
    pub async fn start_postgres(
        docker: &Docker,
        image: &str,
        volume: &str,
        dest: &str,
        server: PostgresServer,
    ) -> Result<Helper> {
        let port_bindings = server.publish.then(|| {
            let mut map = HashMap::new();
            map.insert(
                "5432/tcp".to_string(),
                Some(vec![bollard::models::PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    // Empty: the engine picks a free port.
                    host_port: Some(String::new()),
                }]),
            );
            map
        });
        create_and_start(
            docker,
            HelperSpec {
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
            },
        )
        .await
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
        create_and_start(
            docker,
            HelperSpec {
                image,
                volume,
                dest,
                name_prefix: "ward-helper",
                missing_hint: " (for tests: .ci/test-image.sh)",
                what: "helper container",
                read_only: Some(false),
                port_bindings: None,
                extra_mount: Some((extra_volume, extra_dest)),
                body: ContainerCreateBody {
                    entrypoint: Some(vec!["sleep".into()]),
                    cmd: Some(vec!["infinity".into()]),
                    user: Some("0:0".into()),
                    network_disabled: Some(true),
                    ..Default::default()
                },
            },
        )
        .await
    }

    pub async fn remove(mut self, docker: &Docker) -> Result<()> {
        self.removed = true;
        remove_container(docker, &self.name).await
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
    port_bindings: Option<HashMap<String, Option<Vec<bollard::models::PortBinding>>>>,
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
    let name = unique_name(spec.name_prefix);
    sweep_orphans(docker).await;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(helper_labels()),
        host_config: Some(HostConfig {
            mounts: Some(
                std::iter::once(Mount {
                    target: Some(spec.dest.to_string()),
                    source: Some(spec.volume.to_string()),
                    typ: Some(MountType::VOLUME),
                    read_only: spec.read_only,
                    ..Default::default()
                })
                .chain(spec.extra_mount.map(|(v, d)| Mount {
                    target: Some(d.to_string()),
                    source: Some(v.to_string()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(false),
                    ..Default::default()
                }))
                .collect(),
            ),
            port_bindings: spec.port_bindings,
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..spec.body
    };
    let opts = CreateContainerOptionsBuilder::new().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .with_context(|| format!("creating {} from {image}", spec.what))?;
    let helper = Helper {
        name,
        removed: false,
    };
    start_container(docker, &helper.name).await?;
    Ok(helper)
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.removed {
            let name = self.name.clone();
            blocking(move |d| async move { remove_container(&d, &name).await });
        }
    }
}

/// Runs a Docker operation to completion on a fresh thread with its own
/// runtime, from synchronous code (e.g. `Drop`), even while the caller's
/// runtime is shutting down.
pub fn blocking<F, Fut>(f: F)
where
    F: FnOnce(Docker) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<()>>,
{
    let handle = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("cannot start a runtime for cleanup: {e}");
                return;
            }
        };
        rt.block_on(async move {
            match connect().await {
                Ok(d) => {
                    if let Err(e) = f(d).await {
                        tracing::error!("cleanup failed: {e:#}");
                    }
                }
                Err(e) => tracing::error!("cleanup failed: {e:#}"),
            }
        });
    });
    let _ = handle.join();
}

/// The result of a command run inside a container.
#[derive(Debug)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// Runs a command in a running container and collects its output.
pub async fn exec(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<ExecOutput> {
    let (id, mut output) = exec_stream(docker, container, user, cmd).await?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(item) = output.next().await {
        match item.with_context(|| format!("reading the output of {}", cmd[0]))? {
            bollard::container::LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
            bollard::container::LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
            _ => {}
        }
    }
    let code = exec_exit_code(docker, &id).await?;
    Ok(ExecOutput {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

type ExecStream = std::pin::Pin<
    Box<dyn Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
>;

/// Starts a command in a running container; returns the exec id and its output stream.
pub async fn exec_stream(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<(String, ExecStream)> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                user,
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("running {} in container {container}", cmd[0]))?;
    match docker
        .start_exec(&created.id, None)
        .await
        .with_context(|| format!("running {} in container {container}", cmd[0]))?
    {
        StartExecResults::Attached { output, .. } => Ok((created.id, output)),
        StartExecResults::Detached => anyhow::bail!("exec of {} detached unexpectedly", cmd[0]),
    }
}

pub async fn exec_exit_code(docker: &Docker, id: &str) -> Result<i64> {
    // The exit code can lag the end of the output by a moment.
    for _ in 0..100 {
        let info = docker.inspect_exec(id).await.context("inspecting exec")?;
        if info.running != Some(true) {
            return Ok(info.exit_code.unwrap_or(-1));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("command in container did not finish")
}

/// Streams a tar of `path` out of a container (the engine builds the tar).
pub fn download(
    docker: &Docker,
    container: &str,
    path: &str,
) -> impl Stream<Item = std::io::Result<Bytes>> + use<> {
    let opts = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    docker
        .download_from_container(container, Some(opts))
        .map(|r| r.map_err(std::io::Error::other))
}

/// Starts a command in a running container; returns the exec id, its stdout as
/// a byte stream, and its stderr, collected as it arrives.
pub async fn exec_stdout(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<(
    String,
    impl Stream<Item = std::io::Result<Bytes>> + Send + 'static + use<>,
    std::sync::Arc<std::sync::Mutex<String>>,
)> {
    let (id, output) = exec_stream(docker, container, user, cmd).await?;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err2 = stderr.clone();
    let stdout = output.filter_map(move |item| {
        let err2 = err2.clone();
        async move {
            match item {
                Ok(bollard::container::LogOutput::StdOut { message }) => Some(Ok(message)),
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    if let Ok(mut e) = err2.lock() {
                        e.push_str(&String::from_utf8_lossy(&message));
                    }
                    None
                }
                Ok(_) => None,
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        }
    });
    Ok((id, stdout, stderr))
}

/// Streams an uncompressed tar into `path` of a container (the engine extracts it).
pub async fn upload(
    docker: &Docker,
    container: &str,
    path: &str,
    body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Result<()> {
    let opts = UploadToContainerOptionsBuilder::new()
        .path(path)
        .no_overwrite_dir_non_dir("true")
        .build();
    docker
        .upload_to_container(container, Some(opts), bollard::body_try_stream(body))
        .await
        .with_context(|| format!("uploading the archive into {container}:{path}"))
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

/// Environment and declared volumes of an image.
pub async fn image_config(
    docker: &Docker,
    image: &str,
) -> Result<Option<(HashMap<String, String>, Vec<String>)>> {
    let img = match docker.inspect_image(image).await {
        Ok(i) => i,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting image {image}")),
    };
    let config = img.config.unwrap_or_default();
    let env = env_map(config.env);
    let mut volumes: Vec<String> = config.volumes.unwrap_or_default().into_iter().collect();
    volumes.sort();
    Ok(Some((env, volumes)))
}

/// Entrypoint and command (CMD) of an image; `Ok(None)` when it is absent.
pub async fn image_command(
    docker: &Docker,
    image: &str,
) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let img = match docker.inspect_image(image).await {
        Ok(i) => i,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting image {image}")),
    };
    let config = img.config.unwrap_or_default();
    Ok(Some((
        config.entrypoint.unwrap_or_default(),
        config.cmd.unwrap_or_default(),
    )))
}

/// A volume ward created for its own work; removed when dropped.
#[derive(Debug)]
pub struct TempVolume {
    pub name: String,
    removed: bool,
}

impl TempVolume {
    pub async fn create(docker: &Docker, prefix: &str) -> Result<TempVolume> {
        let name = unique_name(prefix);
        // The owner's pid and host, so a later ward can sweep it if this one is killed.
        create_volume(docker, &name, helper_labels()).await?;
        Ok(TempVolume {
            name,
            removed: false,
        })
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
        create_and_start(
            docker,
            HelperSpec {
                image,
                volume,
                dest,
                name_prefix: "ward-helper",
                missing_hint: " (for tests: .ci/test-image.sh)",
                what: "helper container",
                read_only: Some(false),
                port_bindings: None,
                extra_mount: Some((extra_volume, extra_dest)),
                body: ContainerCreateBody {
                    entrypoint: Some(vec!["sleep".into()]),
                    cmd: Some(vec!["infinity".into()]),
                    user: Some("0:0".into()),
                    network_disabled: Some(true),
                    ..Default::default()
                },
            },
        )
        .await
    }

    pub async fn remove(mut self, docker: &Docker) -> Result<()> {
        self.removed = true;
        remove_volume(docker, &self.name).await
    }
}

impl Drop for TempVolume {
    fn drop(&mut self) {
        if !self.removed {
            let name = self.name.clone();
            blocking(move |d| async move { remove_volume(&d, &name).await });
        }
    }
}

/// Labels of a helper: what it is, and which ward process (on which host) owns it.
fn helper_labels() -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(HELPER_LABEL.to_string(), "1".to_string());
    labels.insert("ward.pid".to_string(), std::process::id().to_string());
    labels.insert("ward.host".to_string(), hostname());
    labels
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Removes helper containers whose ward process (on this host) has died, e.g.
/// after a `kill -9`. Helpers of live ward processes are left alone.
pub async fn sweep_orphans(docker: &Docker) {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("label".into(), vec![format!("{HELPER_LABEL}=1")]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    if let Ok(list) = docker.list_containers(Some(opts)).await {
        for c in list {
            if orphaned(&c.labels.unwrap_or_default())
                && let Some(id) = c.id
            {
                tracing::info!("removing helper container {id} left by a ward that was killed");
                let _ = remove_container(docker, &id).await;
            }
        }
    }
    // Then the throwaway volumes (a volume is only free once its container is gone).
    let opts = ListVolumesOptionsBuilder::new().filters(&filters).build();
    if let Ok(list) = docker.list_volumes(Some(opts)).await {
        for v in list.volumes.unwrap_or_default() {
            if orphaned(&v.labels) {
                tracing::info!(
                    "removing throwaway volume {} left by a ward that was killed",
                    v.name
                );
                let _ = remove_volume(docker, &v.name).await;
            }
        }
    }
}

/// Sweeps what killed wards of this host left behind — throwaway servers
/// still serving a copy of real data, helpers, volumes — if the engine
/// answers within a few seconds; every ward invocation calls it first, so a
/// `kill -9` is cleaned up by the next command of any kind. Silent when there
/// is no engine.
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
    let (Some(pid), Some(h)) = (labels.get("ward.pid"), labels.get("ward.host")) else {
        return false;
    };
    *h == hostname() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
