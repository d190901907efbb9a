//! An S3-compatible bucket prefix as a snapshot store (`s3://bucket/prefix`),
//! through the `object_store` crate (SigV4, retries, conditional puts): AWS S3,
//! Linode/Akamai, Backblaze B2, MinIO, Garage and the like.
//!
//! Settings come from the standard `AWS_*` variables, else from `ward.toml`
//! `[store]`; credentials are never printed, never written into a manifest,
//! and never part of an error message (errors are worded here, from the
//! kind of failure, and anything quoted from the service is scrubbed of the
//! secret values). Every request has a connect and a total timeout and a
//! bounded retry budget, so an unreachable endpoint is an error in seconds,
//! never a hang.
//!
//! The rest of ward is synchronous around its stores (the checked reader, the
//! archive writer run on blocking threads), so the store runs its requests on
//! a small runtime of its own and waits for them ([`block_on`]); that works
//! the same from a blocking thread and from inside another runtime.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

mod transport;

use super::settings::settings;
pub(crate) use super::settings::{RemoteSettings, configure};
use transport::StreamReader;
pub(crate) use transport::Transport;
pub(super) use transport::{block_on, runtime, scrub};

use anyhow::Result;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::error::UsageError;

/// Connecting must succeed within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// No read may stall longer than this (a part upload or a download chunk).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// One small request (manifest, lock, list) end to end, retries included.
const SMALL_REQUEST: Duration = Duration::from_secs(45);
/// One segment upload end to end, retries included (16 MiB at ≥ 1 Mbit/s).
pub(super) const PART_REQUEST: Duration = Duration::from_secs(300);
/// Largest manifest or marker ward reads from a store (trust nothing).
const MAX_SMALL_OBJECT: usize = 64 * 1024 * 1024;

/// `s3://bucket/prefix` when `dir` names a bucket, else None (a directory).
pub(super) fn url_of(dir: &Path) -> Option<&str> {
    dir.to_str().filter(|s| s.starts_with("s3://"))
}

/// What a listing finds: (file, size) pairs and folder names, relative to
/// the prefix.
pub(super) type Listing = (Vec<(String, u64)>, Vec<String>);

/// A bucket prefix, connected.
pub(crate) struct Remote {
    pub(super) s3: Arc<AmazonS3>,
    bucket: String,
    /// Without leading or trailing `/`; may be empty.
    prefix: String,
    endpoint: String,
    /// Values scrubbed from anything quoted from the service.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.url())
    }
}

impl Remote {
    /// Parses `s3://bucket/prefix` and builds the client (no request yet).
    pub(super) fn open(url: &str) -> Result<Remote> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        if rest.contains('@') {
            // Never echoed: the part before '@' is likely a credential.
            return crate::error::usage(
                "the s3:// store URL holds credentials (user:secret@…) — ward never takes them \
                 there; give them as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            );
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !plain(bucket) || !(prefix.is_empty() || prefix.split('/').all(plain)) {
            return crate::error::usage(format!(
                "the store {url:?} is not a valid s3://BUCKET/PREFIX — use letters, digits, '.', \
                 '_', '-' and '/' between parts"
            ));
        }
        let s = settings();
        let (Some(key), Some(secret)) = (&s.access_key_id, &s.secret_access_key) else {
            return crate::error::usage(format!(
                "no S3 credentials for the store {url} — set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (or access_key_id / secret_access_key in ward.toml [store])"
            ));
        };
        for secret in [&s.secret_access_key, &s.session_token]
            .into_iter()
            .flatten()
        {
            crate::redact::register(secret);
        }
        // Without an endpoint, object_store derives AWS's regional one.
        let endpoint = s.endpoint.clone().unwrap_or_default();
        if endpoint.contains('@') {
            return crate::error::usage(
                "the S3 endpoint holds credentials (user:secret@…) — give them as \
                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead",
            );
        }
        if endpoint.starts_with("http://") && !s.allow_http {
            return crate::error::usage(format!(
                "the S3 endpoint {endpoint} is plain http — set AWS_ALLOW_HTTP=true (or \
                 allow_http = true in ward.toml [store]) if that is really meant (a local test \
                 server), else use https"
            ));
        }
        let client = ClientOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_read_timeout(READ_TIMEOUT)
            // No total limit in the client: an archive download may take
            // long. Stalls end at READ_TIMEOUT; every call ward waits for has
            // its own total limit (block_on).
            .with_timeout_disabled()
            .with_allow_http(s.allow_http);
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        };
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(s.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_allow_http(s.allow_http)
            .with_virtual_hosted_style_request(s.virtual_hosted_style)
            .with_client_options(client)
            .with_retry(retry);
        if !endpoint.is_empty() {
            b = b.with_endpoint(&endpoint);
        }
        let mut secrets = vec![secret.clone()];
        if let Some(token) = &s.session_token {
            b = b.with_token(token);
            secrets.push(token.clone());
        }
        let s3 = b.build().map_err(|e| {
            UsageError(format!(
                "cannot use the S3 store {url}: {} — check AWS_ENDPOINT_URL / AWS_REGION (or \
                 ward.toml [store])",
                scrub(&e.to_string(), &secrets)
            ))
        })?;
        let endpoint = if endpoint.is_empty() {
            format!("AWS S3 ({})", s.region.as_deref().unwrap_or("us-east-1"))
        } else {
            endpoint
        };
        Ok(Remote {
            s3: Arc::new(s3),
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            secrets,
        })
    }

    pub(super) fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key of `file` (relative to the prefix).
    pub(super) fn key(&self, file: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(file)
        } else {
            Key::from(format!("{}/{file}", self.prefix))
        }
    }

    /// The file name of `key` relative to the prefix.
    pub(super) fn relative(&self, key: &Key) -> String {
        let k = key.as_ref();
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            k.strip_prefix(&format!("{}/", self.prefix))
                .unwrap_or(k)
                .to_string()
        }
    }

    /// Reads a small object (a manifest, a lock, a marker); None when absent.
    pub(super) fn get_small(&self, file: &str) -> Result<Option<Vec<u8>>> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        let got = block_on(SMALL_REQUEST, async move {
            let r = s3.get(&key).await?;
            if r.meta.size > MAX_SMALL_OBJECT as u64 {
                return Ok(Err(r.meta.size));
            }
            r.bytes().await.map(Ok)
        });
        match got {
            Ok(Ok(Ok(bytes))) => Ok(Some(bytes.to_vec())),
            Ok(Ok(Err(size))) => anyhow::bail!(
                "{} is {size} bytes — far too big for what ward keeps there; not read",
                self.key(file)
            ),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(e)) => Err(self.explain("reading", &e)),
            Err(t) => Err(self.timed_out("reading", t)),
        }
    }

    /// Writes a small object; `create_only` refuses to replace one.
    pub(super) fn put_small(&self, file: &str, bytes: Vec<u8>, create_only: bool) -> Result<()> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        let mode = if create_only {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match block_on(SMALL_REQUEST, async move {
            s3.put_opts(&key, PutPayload::from(bytes), opts).await
        }) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.explain("writing", &e)),
            Err(t) => Err(self.timed_out("writing", t)),
        }
    }

    /// Reads a small object with its ETag; None when absent.
    pub(super) fn get_tagged(&self, file: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        let got = block_on(SMALL_REQUEST, async move {
            let r = s3.get(&key).await?;
            let tag = r.meta.e_tag.clone();
            if r.meta.size > MAX_SMALL_OBJECT as u64 {
                return Ok(None);
            }
            r.bytes().await.map(|b| Some((b.to_vec(), tag)))
        });
        match got {
            Ok(Ok(Some(v))) => Ok(Some(v)),
            Ok(Ok(None)) => Ok(Some((Vec::new(), None))),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(e)) => Err(self.explain("reading", &e)),
            Err(t) => Err(self.timed_out("reading", t)),
        }
    }

    /// Replaces an object only if it still has ETag `tag`: Ok(false) when it
    /// changed meanwhile; None when the service has no conditional update.
    pub(super) fn replace_if(&self, file: &str, tag: &str, bytes: Vec<u8>) -> Result<Option<bool>> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        let opts = PutOptions {
            mode: PutMode::Update(object_store::UpdateVersion {
                e_tag: Some(tag.to_string()),
                version: None,
            }),
            ..PutOptions::default()
        };
        match block_on(SMALL_REQUEST, async move {
            s3.put_opts(&key, PutPayload::from(bytes), opts).await
        }) {
            Ok(Ok(_)) => Ok(Some(true)),
            Ok(Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. }
                | object_store::Error::AlreadyExists { .. },
            )) => Ok(Some(false)),
            Ok(Err(object_store::Error::NotImplemented { .. })) => Ok(None),
            Ok(Err(e)) => Err(self.explain("writing", &e)),
            Err(t) => Err(self.timed_out("writing", t)),
        }
    }

    /// Writes an object only if none is there: Ok(false) when one is. Falls
    /// back to a check-then-write where the service has no conditional put.
    pub(super) fn put_if_absent(&self, file: &str, bytes: Vec<u8>) -> Result<bool> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes.clone());
        match block_on(SMALL_REQUEST, async move {
            s3.put_opts(&key, payload, opts).await
        }) {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            )) => Ok(false),
            Ok(Err(object_store::Error::NotImplemented { .. })) => {
                if self.size(file)?.is_some() {
                    return Ok(false);
                }
                self.put_small(file, bytes, false)?;
                Ok(true)
            }
            Ok(Err(e)) => Err(self.explain("writing", &e)),
            Err(t) => Err(self.timed_out("writing", t)),
        }
    }

    /// The size of an object, None when absent.
    pub(super) fn size(&self, file: &str) -> Result<Option<u64>> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        match block_on(SMALL_REQUEST, async move { s3.head(&key).await }) {
            Ok(Ok(meta)) => Ok(Some(meta.size)),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(e)) => Err(self.explain("reading", &e)),
            Err(t) => Err(self.timed_out("reading", t)),
        }
    }

    /// Deletes an object (absent is fine).
    pub(super) fn delete(&self, file: &str) -> Result<()> {
        let (s3, key) = (self.s3.clone(), self.key(file));
        match block_on(SMALL_REQUEST, async move { s3.delete(&key).await }) {
            Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(self.explain("deleting", &e)),
            Err(t) => Err(self.timed_out("deleting", t)),
        }
    }

    /// The objects directly under `sub` (relative to the prefix; "" for the
    /// prefix itself): (file name relative to the prefix, size).
    pub(super) fn list(&self, sub: &str) -> Result<Vec<(String, u64)>> {
        Ok(self.listing(sub)?.0)
    }

    /// [`Remote::list`] and the folders directly under `sub` (relative to
    /// the prefix, without the trailing `/`). Some services ignore the
    /// delimiter and list every object below instead; callers cope with both.
    pub(super) fn listing(&self, sub: &str) -> Result<Listing> {
        let s3 = self.s3.clone();
        let at = match (self.prefix.is_empty(), sub.is_empty()) {
            (true, true) => None,
            (false, true) => Some(Key::from(self.prefix.as_str())),
            _ => Some(self.key(sub)),
        };
        match block_on(SMALL_REQUEST, async move {
            s3.list_with_delimiter(at.as_ref()).await
        }) {
            Ok(Ok(listed)) => Ok((
                listed
                    .objects
                    .iter()
                    .map(|o| (self.relative(&o.location), o.size))
                    .collect(),
                listed
                    .common_prefixes
                    .iter()
                    .map(|p| self.relative(p))
                    .collect(),
            )),
            Ok(Err(e)) => Err(self.explain("listing", &e)),
            Err(t) => Err(self.timed_out("listing", t)),
        }
    }

    /// Deletes objects in bulk (absent ones are fine).
    pub(super) fn delete_all(&self, files: &[String]) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let s3 = self.s3.clone();
        let keys: Vec<object_store::Result<Key>> = files.iter().map(|f| Ok(self.key(f))).collect();
        let total = SMALL_REQUEST + Duration::from_millis(20) * files.len() as u32;
        match block_on(total, async move {
            let mut results = s3.delete_stream(futures_util::stream::iter(keys).boxed());
            while let Some(r) = results.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.explain("deleting", &e)),
            Err(t) => Err(self.timed_out("deleting", t)),
        }
    }

    /// A reader over several objects' bytes one after another, streamed;
    /// the next [`PREFETCH`] requests are already under way while one is
    /// read, so a service's time to first byte is paid once, not per object.
    pub(super) fn reader_of(&self, files: Vec<String>) -> Box<dyn Read + Send> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(16);
        let (s3, secrets) = (self.s3.clone(), self.secrets.clone());
        let keys: Vec<Key> = files.iter().map(|f| self.key(f)).collect();
        runtime().spawn(async move {
            let mut gets = futures_util::stream::iter(keys)
                .map(|key| {
                    let s3 = s3.clone();
                    async move { s3.get(&key).await }
                })
                .buffered(PREFETCH);
            while let Some(got) = gets.next().await {
                let mut stream = match got {
                    Ok(got) => got.into_stream(),
                    Err(e) => {
                        let _ = forward(&tx, Err(download_error(&e, &secrets))).await;
                        return;
                    }
                };
                while let Some(chunk) = stream.next().await {
                    let failed = chunk.is_err();
                    let item = chunk.map_err(|e| download_error(&e, &secrets));
                    // After an error nothing more: the next object's bytes
                    // must never follow a cut one.
                    if !forward(&tx, item).await || failed {
                        return;
                    }
                }
            }
        });
        Box::new(StreamReader {
            rx,
            current: Bytes::new(),
        })
    }
}

/// Objects requested ahead of the one being read.
const PREFETCH: usize = 3;

fn download_error(e: &object_store::Error, secrets: &[String]) -> io::Error {
    io::Error::other(Transport(scrub(&format!("{e}"), secrets)))
}

/// Hands a chunk to the reader; false once the reader is gone. A full
/// channel is a slow reader: wait for room without blocking this runtime's
/// few threads.
async fn forward(
    tx: &std::sync::mpsc::SyncSender<io::Result<Bytes>>,
    mut item: io::Result<Bytes>,
) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                item = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised() {
        assert_eq!(url_of(Path::new("s3://b/p")), Some("s3://b/p"));
        assert_eq!(url_of(Path::new("./s3")), None);
    }
}
