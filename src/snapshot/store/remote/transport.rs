//! How the S3 store talks to the service: requests on a runtime of the
//! store's own ([`block_on`]), downloads handed over through a channel with a
//! stall limit, and failures worded here — from the kind of failure, with
//! every secret value scrubbed out — so no credential and no page of XML
//! from the service reaches a message.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;

use super::Remote;
use crate::error::{Unreachable, UsageError};

impl Remote {
    /// One line for a failed request: what failed and how to fix it, never a
    /// credential, never a page of XML from the service.
    pub(in crate::snapshot::store) fn explain(
        &self,
        doing: &str,
        e: &object_store::Error,
    ) -> anyhow::Error {
        let raw = scrub(&format!("{e}"), &self.secrets);
        let url = self.url();
        let lower = raw.to_ascii_lowercase();
        let msg = if lower.contains("nosuchbucket") || lower.contains("bucket does not exist") {
            format!(
                "the bucket {:?} does not exist at {} ({doing} {url}) — create it, or fix the \
                 bucket in the store URL",
                self.bucket, self.endpoint
            )
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "signaturedoesnotmatch",
            "invalidaccesskeyid",
            "accessdenied",
            "403 forbidden",
            "401 unauthorized",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            format!(
                "the S3 service at {} refused ward's credentials ({doing} {url}) — check \
                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or ward.toml [store]) and the \
                 key's permissions on the bucket",
                self.endpoint
            )
        } else if [
            "connect",
            "dns",
            "timed out",
            "timeout",
            "connection",
            "error sending request",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            return Unreachable(format!(
                "cannot reach the S3 endpoint {} ({doing} {url}) — check AWS_ENDPOINT_URL and \
                 that the service is up and reachable",
                self.endpoint
            ))
            .into();
        } else {
            let short: String = raw
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            format!("S3 request failed ({doing} {url}): {short}")
        };
        UsageError(msg).into()
    }

    pub(in crate::snapshot::store) fn timed_out(&self, doing: &str, t: Duration) -> anyhow::Error {
        Unreachable(format!(
            "the S3 endpoint {} did not answer within {} s ({doing} {}) — check AWS_ENDPOINT_URL \
             and that the service is up",
            self.endpoint,
            t.as_secs(),
            self.url()
        ))
        .into()
    }
}

/// Reads what a download task hands over.
pub(super) struct StreamReader {
    pub(super) rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    pub(super) current: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv_timeout(super::READ_TIMEOUT * 2) {
                Ok(Ok(b)) => self.current = b,
                Ok(Err(e)) => return Err(e),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::other(Transport(
                        "the S3 download stalled".into(),
                    )));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// A failed read of a remote object: the network, not the archive — an
/// error (exit 2), never a finding of damage.
#[derive(Debug, thiserror::Error)]
#[error("reading from the S3 store failed: {0}")]
pub(crate) struct Transport(pub String);

/// Replaces every secret value in `text`.
pub(in crate::snapshot::store) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = crate::redact::text(text);
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// The store's own runtime: requests run here whoever waits for them.
pub(in crate::snapshot::store) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ward-s3")
            .enable_all()
            .build()
            .expect("a runtime for the S3 client starts")
    })
}

/// Runs `fut` on the store's runtime and waits for it, at most `limit`
/// (Err(limit) then): usable from blocking threads and from async code.
pub(in crate::snapshot::store) fn block_on<T: Send + 'static>(
    limit: Duration,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> std::result::Result<T, Duration> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        if let Ok(v) = tokio::time::timeout(limit, fut).await {
            let _ = tx.send(v);
        }
    });
    rx.recv().map_err(|_| limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let s = scrub(
            "sig for wJalrXUtnFEMI/K7MDENG bad",
            &["wJalrXUtnFEMI/K7MDENG".into()],
        );
        assert_eq!(s, "sig for *** bad");
    }
}
