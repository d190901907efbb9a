//! What a manifest records of where a snapshot came from: the container,
//! image, compose labels, volume and mount — never a secret (volume options
//! that may hold one are named only).

use serde::{Deserialize, Serialize};

use super::Target;

/// Serialisable facts of where a snapshot came from (for the manifest).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceFacts {
    pub kind: String,
    pub container: Option<String>,
    pub image: Option<String>,
    pub image_id: Option<String>,
    pub repo_digests: Vec<String>,
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
    pub volume: Option<String>,
    pub volume_driver: Option<String>,
    pub volume_labels: std::collections::BTreeMap<String, String>,
    pub volume_options: std::collections::BTreeMap<String, String>,
    pub mount: Option<String>,
    pub datadir: Option<String>,
    /// The superuser role the image was initialised with (POSTGRES_USER), not a secret.
    #[serde(default)]
    pub postgres_user: Option<String>,
    /// For a data directory: the OS user that owned it. initdb names the
    /// bootstrap superuser after the user that runs it (unless `-U`), so
    /// this is the first guess for the role of a throwaway copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadir_owner: Option<String>,
}

impl Target {
    pub fn source_facts(&self) -> SourceFacts {
        match self {
            Target::Volume(v) => SourceFacts {
                kind: "docker-volume".into(),
                container: v.container.as_ref().map(|c| c.name.clone()),
                image: Some(v.image.clone()),
                image_id: v.container.as_ref().map(|c| c.image_id.clone()),
                repo_digests: v
                    .container
                    .as_ref()
                    .map(|c| c.repo_digests.clone())
                    .unwrap_or_default(),
                compose_project: v
                    .container
                    .as_ref()
                    .and_then(|c| c.compose_project().map(str::to_string)),
                compose_service: v
                    .container
                    .as_ref()
                    .and_then(|c| c.compose_service().map(str::to_string)),
                volume: Some(v.volume.name.clone()),
                volume_driver: Some(v.volume.driver.clone()),
                volume_labels: v.volume.labels.clone().into_iter().collect(),
                // Names only where the value may be a secret (a CIFS
                // password): manifests are files anyone with the store reads.
                volume_options: v
                    .volume
                    .options
                    .iter()
                    .map(|(k, val)| {
                        let shown = if crate::redact::is_secret_name(k) {
                            "(redacted)".to_string()
                        } else {
                            crate::redact::text(val)
                        };
                        (k.clone(), shown)
                    })
                    .collect(),
                mount: Some(v.mount.clone()),
                datadir: None,
                postgres_user: v
                    .container
                    .as_ref()
                    .and_then(|c| c.env.get("POSTGRES_USER").cloned()),
                datadir_owner: None,
            },
            Target::Datadir(p) => SourceFacts {
                kind: "datadir".into(),
                datadir: Some(p.display().to_string()),
                ..Default::default()
            },
        }
    }
}
