//! Telling someone how a backup went. Two kinds of receiver:
//!
//! - a **webhook** (`--notify URL`): one POST at the end of every run with a
//!   small JSON body ([`Body`]: status, snapshot, sizes, durations, error);
//! - a **healthchecks.io-style check** (`--ping URL`): a POST to `URL/start`
//!   when the work starts, to `URL` on success and to `URL/fail` on failure
//!   (partial or failed), the one-line summary as the body. A check that
//!   stops hearing success (the VPS is down, the timer never fires) alerts
//!   on the service's own schedule, which a webhook alone cannot do.
//!
//! Every request has a 10 s timeout. A receiver that is down or answers an
//! error is reported in the run's report; it never turns a good backup into
//! a failure. The URLs are secrets (a check's UUID, a webhook's token, a
//! password in the userinfo): reports and errors show only
//! `scheme://host/…`, and the full URL and its long path segments and query
//! are registered with [`crate::redact`] so that no log line shows them.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use url::Url;

use super::{Report, Status};

/// How long one request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to send signals; both optional. Its `Debug` shows only the hosts.
#[derive(Clone, Default)]
pub(crate) struct Signals {
    notify: Option<Url>,
    ping: Option<Url>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("notify", &self.notify.as_ref().map(shown))
            .field("ping", &self.ping.as_ref().map(shown))
            .finish()
    }
}

/// One signal sent (or not).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sent {
    /// "ping start", "ping success", "ping fail" or "webhook".
    pub what: &'static str,
    /// The receiver, redacted to `scheme://host/…`.
    pub to: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// The webhook's JSON body.
#[derive(Debug, Serialize)]
pub(crate) struct Body<'a> {
    pub status: Status,
    pub summary: String,
    pub snapshot: Option<&'a str>,
    pub target: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub seconds: f64,
    pub create_seconds: Option<f64>,
    pub downtime_seconds: Option<f64>,
    pub total_bytes: Option<u64>,
    pub compressed_bytes: Option<u64>,
    pub stores: Vec<BodyStore<'a>>,
    pub error: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BodyStore<'a> {
    pub store: &'a str,
    pub ok: bool,
    pub copy_seconds: Option<f64>,
    pub verify_seconds: Option<f64>,
    pub pruned: usize,
    pub failed_step: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl<'a> Body<'a> {
    pub(crate) fn of(r: &'a Report) -> Body<'a> {
        Body {
            status: r.status,
            summary: r.summary(),
            snapshot: r.snapshot.as_deref(),
            target: &r.target,
            started_at: r.started_at,
            seconds: r.seconds,
            create_seconds: r.create.as_ref().map(|c| c.seconds),
            downtime_seconds: r.create.as_ref().and_then(|c| c.downtime_seconds),
            total_bytes: r.create.as_ref().map(|c| c.total_bytes),
            compressed_bytes: r.create.as_ref().map(|c| c.compressed_bytes),
            stores: r
                .stores
                .iter()
                .map(|s| BodyStore {
                    store: &s.store,
                    ok: s.ok,
                    copy_seconds: s.copy_seconds,
                    verify_seconds: s.verify_seconds,
                    pruned: s.pruned.len(),
                    failed_step: s.failed_step,
                    error: s.error.as_deref(),
                })
                .collect(),
            error: r.error.as_deref(),
        }
    }
}

/// Parses a receiver URL given as `what` (`--notify`, `--ping`): http or
/// https only, and from now on hidden wherever ward prints.
fn receiver(raw: &str, what: &str) -> Result<Url> {
    let bad = |why: &str| {
        crate::error::usage::<Url>(format!(
            "{what} {} is not usable: {why} — give an http:// or https:// URL",
            shown_raw(raw)
        ))
    };
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(e) => return bad(&e.to_string()),
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return bad("not an http(s) URL with a host");
    }
    register_secrets(raw, &url);
    Ok(url)
}

/// The secret parts of a receiver URL, for redaction everywhere.
fn register_secrets(raw: &str, url: &Url) {
    crate::redact::register(raw.trim());
    crate::redact::register(url.as_str());
    if let Some(p) = url.password() {
        crate::redact::register(p);
    }
    if let Some(q) = url.query() {
        crate::redact::register(q);
    }
    // A check's UUID or a webhook's token sits in the path; short segments
    // ("hooks", "ping") are left readable.
    for seg in url.path_segments().into_iter().flatten() {
        if seg.len() >= 12 {
            crate::redact::register(seg);
        }
    }
}

/// `scheme://host[:port]/…`: enough to tell receivers apart, nothing secret.
pub(crate) fn shown(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if url.path().len() > 1 || url.query().is_some() {
        "/…"
    } else {
        ""
    };
    format!("{}://{host}{port}{rest}", url.scheme())
}

fn shown_raw(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(u) if u.host_str().is_some() => shown(&u),
        _ => "(the value given)".into(),
    }
}

/// `base` with one more path segment (`/start`, `/fail`), query kept.
fn with_segment(base: &Url, segment: &str) -> Url {
    let mut u = base.clone();
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty().push(segment);
    }
    u
}

impl Signals {
    pub(crate) fn parse(notify: Option<&str>, ping: Option<&str>) -> Result<Signals> {
        Ok(Signals {
            notify: notify.map(|u| receiver(u, "--notify")).transpose()?,
            ping: ping.map(|u| receiver(u, "--ping")).transpose()?,
        })
    }

    /// The `/start` ping, if a check is configured.
    pub(crate) async fn start(&self) -> Vec<Sent> {
        match &self.ping {
            Some(p) => {
                vec![post(&with_segment(p, "start"), "ping start", None, String::new()).await]
            }
            None => Vec::new(),
        }
    }

    /// The success or `/fail` ping and the webhook, for the finished `report`.
    pub(crate) async fn finish(&self, report: &Report) -> Vec<Sent> {
        let mut sent = Vec::new();
        if let Some(p) = &self.ping {
            let (url, what) = if report.status == Status::Ok {
                (p.clone(), "ping success")
            } else {
                (with_segment(p, "fail"), "ping fail")
            };
            sent.push(post(&url, what, None, report.summary()).await);
        }
        if let Some(n) = &self.notify {
            let body = serde_json::to_string(&Body::of(report)).expect("the body serialises");
            sent.push(post(n, "webhook", Some("application/json"), body).await);
        }
        sent
    }
}

/// One POST; never an error, the outcome is in the result.
async fn post(url: &Url, what: &'static str, content_type: Option<&str>, body: String) -> Sent {
    let outcome = send(url, content_type, body).await;
    Sent {
        what,
        to: shown(url),
        ok: outcome.is_ok(),
        error: outcome
            .err()
            .map(|e| crate::redact::text(&e).replace('\n', " ")),
    }
}

async fn send(url: &Url, content_type: Option<&str>, body: String) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("ward/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", describe(e)))?;
    let mut req = client.post(url.clone()).body(body);
    if let Some(ct) = content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let resp = req.send().await.map_err(describe)?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {status}"))
    }
}

/// A request error in one line, without the URL (it is a secret).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let e = e.without_url();
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    if causes.is_empty() {
        kind
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_keep_only_scheme_and_host() {
        let u = Url::parse("https://user:pw@hc-ping.com:8443/abc-def-uuid?k=tok").unwrap();
        assert_eq!(shown(&u), "https://hc-ping.com:8443/…");
        let u = Url::parse("http://example.com").unwrap();
        assert_eq!(shown(&u), "http://example.com");
    }

    #[test]
    fn pings_append_a_segment_before_the_query() {
        let u = Url::parse("https://hc-ping.com/uuid/?x=1").unwrap();
        assert_eq!(
            with_segment(&u, "fail").as_str(),
            "https://hc-ping.com/uuid/fail?x=1"
        );
        let u = Url::parse("https://hc-ping.com/uuid").unwrap();
        assert_eq!(
            with_segment(&u, "start").as_str(),
            "https://hc-ping.com/uuid/start"
        );
    }

    #[test]
    fn receivers_must_be_http() {
        for bad in ["ftp://x/y", "not a url", "mailto:ops@example.com"] {
            let e = receiver(bad, "--ping").unwrap_err().to_string();
            assert!(e.contains("--ping"), "{e}");
        }
        let e = receiver("ftp://u:secretpw@host/p", "--notify")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretpw"), "{e}");
    }
}
