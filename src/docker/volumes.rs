//! Docker volumes: inspecting, creating and removing them, and the
//! throwaway volumes ward makes for its own work — each call bounded.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::client::{Docker, blocking, bounded, is_not_found};
use super::helper::unique_name;
use super::sweep::helper_labels;

/// What ward needs to know about a volume.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VolumeFacts {
    pub name: String,
    pub driver: String,
    pub labels: HashMap<String, String>,
    pub options: HashMap<String, String>,
}

pub(crate) async fn inspect_volume(docker: &Docker, name: &str) -> Result<Option<VolumeFacts>> {
    let what = format!("inspecting volume {name}");
    match bounded(&what, docker.inspect_volume(name)).await? {
        Ok(v) => Ok(Some(VolumeFacts {
            name: v.name,
            driver: v.driver,
            labels: v.labels,
            options: v.options,
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).context(what),
    }
}

/// Creates a volume (used by tests and throwaway restores), labelled as given.
pub(crate) async fn create_volume(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<()> {
    let what = format!("creating volume {name}");
    let request = bollard::models::VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    bounded(&what, docker.create_volume(request))
        .await?
        .context(what)?;
    Ok(())
}

pub(crate) async fn remove_volume(docker: &Docker, name: &str) -> Result<()> {
    let what = format!("removing volume {name}");
    let call = docker.remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>);
    match bounded(&what, call).await? {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).context(what),
    }
}

/// A volume ward created for its own work; removed when dropped.
#[derive(Debug)]
pub(crate) struct TempVolume {
    pub name: String,
    removed: bool,
}

impl TempVolume {
    pub(crate) async fn create(docker: &Docker, prefix: &str) -> Result<TempVolume> {
        let name = unique_name(prefix);
        // The owner's pid and host, so a later ward can sweep it if this one is killed.
        create_volume(docker, &name, helper_labels()).await?;
        Ok(TempVolume {
            name,
            removed: false,
        })
    }

    pub(crate) async fn remove(mut self, docker: &Docker) -> Result<()> {
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
