//! Running commands in containers and moving tars in and out of them: the
//! long streams of ward's Docker traffic. They may rightly last for hours,
//! so they are bounded by *idle* time, not total time (see `client`).

use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::client::{Docker, bounded, call_timeout, idle_bounded, stalled};

/// The result of a command run inside a container.
#[derive(Debug)]
pub(crate) struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub(crate) fn ok(&self) -> bool {
        self.code == 0
    }
}

/// Runs a command in a running container and collects its output.
pub(crate) async fn exec(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<ExecOutput> {
    let (id, mut output) = exec_stream(docker, container, user, cmd).await?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(item) = output.next().await {
        match item.with_context(|| format!("reading the output of {}", cmd[0]))? {
            LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
            LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
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

type ExecStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<LogOutput>> + Send>>;

/// Starts a command in a running container; returns the exec id and its
/// output stream. A command may run silently for long (a checkpoint): the
/// stream only gives up when, after an idle spell, the engine no longer
/// answers that the command is running.
async fn exec_stream(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<(String, ExecStream)> {
    let what = format!("running {} in container {container}", cmd[0]);
    let options = CreateExecOptions {
        cmd: Some(cmd.to_vec()),
        user,
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = bounded(&what, docker.create_exec(container, options))
        .await?
        .with_context(|| what.clone())?;
    let started = bounded(&what, docker.start_exec(&created.id, None))
        .await?
        .with_context(|| what.clone())?;
    let StartExecResults::Attached { output, .. } = started else {
        anyhow::bail!("exec of {} detached unexpectedly", cmd[0]);
    };
    let output = output.map(|item| item.map_err(std::io::Error::other));
    let (engine, id) = (docker.clone(), created.id.clone());
    let still_running = move || {
        let (engine, id) = (engine.clone(), id.clone());
        async move { matches!(engine.inspect_exec(&id).await, Ok(info) if info.running == Some(true)) }
    };
    let watched = idle_bounded(what, output, still_running);
    Ok((created.id, Box::pin(watched)))
}

/// Starts a command in a running container and leaves it running there
/// (its output goes nowhere; it ends when it is done or the container
/// stops). For work nobody waits on, such as deleting what a restore
/// replaced once the new data runs.
pub(crate) async fn exec_detached(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<()> {
    let what = format!("starting {} in container {container}", cmd[0]);
    let options = CreateExecOptions {
        cmd: Some(cmd.to_vec()),
        user,
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        ..Default::default()
    };
    let created = bounded(&what, docker.create_exec(container, options))
        .await?
        .with_context(|| what.clone())?;
    let detach = bollard::exec::StartExecOptions {
        detach: true,
        ..Default::default()
    };
    bounded(&what, docker.start_exec(&created.id, Some(detach)))
        .await?
        .with_context(|| what.clone())?;
    Ok(())
}

pub(crate) async fn exec_exit_code(docker: &Docker, id: &str) -> Result<i64> {
    // The exit code can lag the end of the output by a moment.
    for _ in 0..100 {
        let info = bounded("inspecting a command's exit", docker.inspect_exec(id))
            .await?
            .context("inspecting exec")?;
        if info.running != Some(true) {
            return Ok(info.exit_code.unwrap_or(-1));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("command in container did not finish")
}

/// Streams a tar of `path` out of a container (the engine builds the tar);
/// ends with a timed-out error when the engine sends nothing for
/// [`call_timeout`].
pub(crate) fn download(
    docker: &Docker,
    container: &str,
    path: &str,
) -> impl Stream<Item = std::io::Result<Bytes>> + use<> {
    let opts = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let tar = docker
        .download_from_container(container, Some(opts))
        .map(|r| r.map_err(std::io::Error::other));
    let what = format!("reading {container}:{path}");
    idle_bounded(what, Box::pin(tar), || async { false })
}

/// Starts a command in a running container; returns the exec id, its stdout as
/// a byte stream, and its stderr, collected as it arrives.
pub(crate) async fn exec_stdout(
    docker: &Docker,
    container: &str,
    user: Option<&str>,
    cmd: &[&str],
) -> Result<(
    String,
    impl Stream<Item = std::io::Result<Bytes>> + Send + 'static + use<>,
    Arc<Mutex<String>>,
)> {
    let (id, output) = exec_stream(docker, container, user, cmd).await?;
    let stderr = Arc::new(Mutex::new(String::new()));
    let err2 = stderr.clone();
    let stdout = output.filter_map(move |item| {
        let err2 = err2.clone();
        async move {
            match item {
                Ok(LogOutput::StdOut { message }) => Some(Ok(message)),
                Ok(LogOutput::StdErr { message }) => {
                    if let Ok(mut e) = err2.lock() {
                        e.push_str(&String::from_utf8_lossy(&message));
                    }
                    None
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }
    });
    Ok((id, stdout, stderr))
}

/// When the upload last moved, and whether it is the engine's turn (it has
/// the last chunk and has not asked for the next) or ward's (the archive is
/// being read and checked — not the engine's delay).
#[derive(Debug)]
struct Activity {
    since: Instant,
    engine_turn: bool,
}

/// An upload body that records [`Activity`] each time the engine pulls on it.
struct Tracked<S> {
    inner: std::pin::Pin<Box<S>>,
    activity: Arc<Mutex<Activity>>,
}

impl<S: Stream> Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<S::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Ok(mut a) = self.activity.lock() {
            a.since = Instant::now();
            a.engine_turn = polled.is_ready();
        }
        polled
    }
}

/// Streams an uncompressed tar into `path` of a container (the engine
/// extracts it). Fails with a clear error when the engine takes nothing (or,
/// after the last chunk, does not answer) for [`call_timeout`].
pub(crate) async fn upload(
    docker: &Docker,
    container: &str,
    path: &str,
    body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Result<()> {
    let opts = UploadToContainerOptionsBuilder::new()
        .path(path)
        .no_overwrite_dir_non_dir("true")
        .build();
    let what = format!("uploading the archive into {container}:{path}");
    let activity = Arc::new(Mutex::new(Activity {
        since: Instant::now(),
        engine_turn: true,
    }));
    let body = Tracked {
        inner: Box::pin(body),
        activity: activity.clone(),
    };
    let sending = docker.upload_to_container(container, Some(opts), bollard::body_try_stream(body));
    tokio::pin!(sending);
    let limit = call_timeout();
    loop {
        tokio::select! {
            done = &mut sending => return done.context(what),
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let idle = activity
                    .lock()
                    .map(|a| a.engine_turn && a.since.elapsed() > limit)
                    .unwrap_or(false);
                if idle {
                    return Err(stalled(&what, limit).into());
                }
            }
        }
    }
}
