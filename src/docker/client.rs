//! Reaching the engine, and the bounds on every call to it.
//!
//! An endpoint that accepts a connection and never answers (a wedged engine,
//! a wrong `DOCKER_HOST`) must not hang ward. Short calls (inspect, create,
//! start, remove, list) get one total limit, [`call_timeout`], applied in one
//! place ([`bounded`]). Long streams (exec output, archive download and
//! upload) may rightly run for hours, so they get an *idle* limit instead:
//! the same number of seconds without progress ([`idle_bounded`]).

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
pub(crate) use bollard::Docker;
use futures_util::{Stream, StreamExt};
use serde::Serialize;

/// The engine ward reached.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EngineInfo {
    pub engine_version: String,
    /// The API version ward and the engine agreed on.
    pub api_version: String,
    pub os: String,
}

/// How long one short Docker API call may take, and how long a stream may
/// make no progress: `WARD_DOCKER_TIMEOUT` seconds, default 60.
pub(crate) fn call_timeout() -> Duration {
    std::env::var("WARD_DOCKER_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// The one-line error for an engine that stopped answering.
pub(crate) fn stalled(what: &str, limit: Duration) -> crate::error::UsageError {
    crate::error::UsageError(format!(
        "the Docker engine did not answer within {}s while {what} — is DOCKER_HOST right \
         and the engine healthy? (WARD_DOCKER_TIMEOUT sets the limit)",
        limit.as_secs()
    ))
}

/// Runs one short Docker API call within [`call_timeout`]. The outer error is
/// the timeout (one clear line); the inner result is the engine's answer, so
/// callers can still branch on "not found" or "not modified".
pub(crate) async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<Result<T, bollard::errors::Error>> {
    bounded_for(call_timeout(), what, call).await
}

/// [`bounded`] with a limit of the caller's (e.g. a stop that may rightly
/// take its grace period).
pub(crate) async fn bounded_for<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<Result<T, bollard::errors::Error>> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => Ok(answer),
        Err(_) => Err(stalled(what, limit).into()),
    }
}

/// Ends `stream` with a timed-out error when it yields nothing for
/// [`call_timeout`] *while ward waits for it* — time the consumer spends on
/// an item does not count. `still_alive` is asked first, each time the limit
/// passes: a command that runs silently for a long time (a checkpoint before
/// `pg_basebackup` writes anything) is progress as long as the engine says so
/// within the limit.
pub(crate) fn idle_bounded<S, T, A, F>(
    what: String,
    stream: S,
    still_alive: A,
) -> impl Stream<Item = std::io::Result<T>> + Send + use<S, T, A, F>
where
    S: Stream<Item = std::io::Result<T>> + Send + Unpin,
    T: Send,
    A: FnMut() -> F + Send,
    F: Future<Output = bool> + Send,
{
    idle_bounded_for(call_timeout(), what, stream, still_alive)
}

/// [`idle_bounded`] with the limit given.
fn idle_bounded_for<S, T, A, F>(
    limit: Duration,
    what: String,
    stream: S,
    still_alive: A,
) -> impl Stream<Item = std::io::Result<T>> + Send + use<S, T, A, F>
where
    S: Stream<Item = std::io::Result<T>> + Send + Unpin,
    T: Send,
    A: FnMut() -> F + Send,
    F: Future<Output = bool> + Send,
{
    futures_util::stream::unfold(Some((stream, still_alive)), move |state| {
        let what = what.clone();
        async move {
            let (mut stream, mut alive) = state?;
            loop {
                match tokio::time::timeout(limit, stream.next()).await {
                    Ok(Some(item)) => return Some((item, Some((stream, alive)))),
                    Ok(None) => return None,
                    Err(_) => {
                        let answered = tokio::time::timeout(limit, alive()).await;
                        if answered != Ok(true) {
                            let e = std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                stalled(&what, limit),
                            );
                            return Some((Err(e), None));
                        }
                    }
                }
            }
        }
    })
}

/// Connects to the engine (DOCKER_HOST or the local socket) and negotiates the API version.
pub(crate) async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .context("cannot set up a Docker client (is DOCKER_HOST valid?)")?
        // bollard's own limit (120s on the response head) would cut a long
        // upload short; ward bounds every call itself instead.
        .with_timeout(Duration::from_secs(30 * 24 * 3600));
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

pub(crate) async fn engine_info() -> Result<EngineInfo> {
    let docker = connect().await?;
    let v = bounded("asking the Docker engine for its version", docker.version())
        .await?
        .context("asking the Docker engine for its version")?;
    let api = docker.client_version();
    Ok(EngineInfo {
        engine_version: v.version.unwrap_or_else(|| "unknown".into()),
        api_version: format!("{}.{}", api.major_version, api.minor_version),
        os: v.os.unwrap_or_default(),
    })
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(crate) fn is_not_modified(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

/// Runs a Docker operation to completion on a fresh thread with its own
/// runtime, from synchronous code (e.g. `Drop`), even while the caller's
/// runtime is shutting down.
pub(crate) fn blocking<F, Fut>(f: F)
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_silent_stream_ends_with_a_timeout_once_the_engine_stops_answering() {
        let silent = futures_util::stream::pending::<std::io::Result<u8>>();
        let mut asked = 0;
        let watched = idle_bounded_for(LIMIT, "reading".into(), silent, || {
            asked += 1;
            let answer = asked < 3;
            async move { answer }
        });
        let items: Vec<_> = watched.collect().await;
        assert_eq!(items.len(), 1);
        let e = items.into_iter().next().unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("while reading"), "{e}");
    }

    #[tokio::test]
    async fn a_stream_that_makes_progress_is_not_cut() {
        let slow = futures_util::stream::iter(0..5u8).then(|n| async move {
            tokio::time::sleep(LIMIT / 2).await;
            Ok(n)
        });
        let watched = idle_bounded_for(LIMIT, "reading".into(), Box::pin(slow), || async { false });
        let items: Vec<u8> = watched.map(|r| r.unwrap()).collect().await;
        assert_eq!(items, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn time_the_consumer_spends_is_not_idle_time() {
        let items = futures_util::stream::iter([Ok(1u8), Ok(2)]);
        let mut watched = Box::pin(idle_bounded_for(LIMIT, "reading".into(), items, || async {
            false
        }));
        assert_eq!(watched.next().await.unwrap().unwrap(), 1);
        tokio::time::sleep(LIMIT * 3).await;
        assert_eq!(watched.next().await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_call_that_never_answers_is_a_usage_error() {
        let never = std::future::pending::<Result<(), bollard::errors::Error>>();
        let e = bounded_for(LIMIT, "inspecting container x", never)
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<crate::error::UsageError>().is_some());
        assert!(e.to_string().contains("inspecting container x"), "{e}");
    }
}
