//! Endpoint, region, addressing and credentials of S3-compatible stores:
//! the standard `AWS_*` variables over `ward.toml [store]`, set once per
//! process by the command layer. The Debug form never shows a credential.

use std::sync::OnceLock;

/// Endpoint, region, addressing and credentials of S3-compatible stores.
#[derive(Clone, Default)]
pub(crate) struct RemoteSettings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: bool,
    pub virtual_hosted_style: bool,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

static SETTINGS: OnceLock<RemoteSettings> = OnceLock::new();

/// Sets this process's S3 settings (the command layer, from the environment
/// and `ward.toml`); a later call is ignored. Stores opened by name alone
/// (a journal naming its store) use them too.
pub(crate) fn configure(settings: RemoteSettings) {
    let _ = SETTINGS.set(settings);
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

impl RemoteSettings {
    /// The standard `AWS_*` variables, each over the same key of `file`.
    pub(crate) fn from_env_over(file: RemoteSettings) -> RemoteSettings {
        RemoteSettings {
            endpoint: env(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"])
                .or(file.endpoint),
            region: env(&["AWS_REGION", "AWS_DEFAULT_REGION"]).or(file.region),
            access_key_id: env(&["AWS_ACCESS_KEY_ID"]).or(file.access_key_id),
            secret_access_key: env(&["AWS_SECRET_ACCESS_KEY"]).or(file.secret_access_key),
            session_token: env(&["AWS_SESSION_TOKEN"]).or(file.session_token),
            allow_http: env(&["AWS_ALLOW_HTTP"])
                .map(|v| truthy(&v))
                .unwrap_or(file.allow_http),
            virtual_hosted_style: env(&["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"])
                .map(|v| truthy(&v))
                .unwrap_or(file.virtual_hosted_style),
        }
    }
}

pub(super) fn settings() -> RemoteSettings {
    SETTINGS
        .get()
        .cloned()
        .unwrap_or_else(|| RemoteSettings::from_env_over(RemoteSettings::default()))
}

impl RemoteSettings {
    /// The S3 settings of `ward.toml [store]`, under the `AWS_*` variables.
    /// (Here, not in `config`: the config module knows no domain.)
    pub(crate) fn from_file(f: &crate::config::FileStore) -> RemoteSettings {
        RemoteSettings::from_env_over(RemoteSettings {
            endpoint: f.endpoint.clone(),
            region: f.region.clone(),
            access_key_id: f.access_key_id.clone(),
            secret_access_key: f.secret_access_key.clone(),
            session_token: f.session_token.clone(),
            allow_http: f.allow_http,
            virtual_hosted_style: f.virtual_hosted_style,
        })
    }
}
