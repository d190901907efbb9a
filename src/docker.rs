//! The only module that talks to the Docker Engine (through bollard).
//!
//! ward negotiates the API version with the engine (Debian's docker.io speaks
//! 1.41, older than bollard's default) and never pulls an image.

use anyhow::{Context, Result};
use bollard::Docker;
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
    docker
        .negotiate_version()
        .await
        .context("cannot reach the Docker engine — is it running, and may this user use it?")
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
