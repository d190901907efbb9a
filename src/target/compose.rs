//! Finding the container a target names: by name, by compose service, or —
//! with nothing given — the one Postgres container of the compose project,
//! named as Compose names projects.

use std::path::Path;

use anyhow::Result;

use super::TargetSpec;
use crate::docker::{self, ContainerFacts, Docker};

/// The compose project of a directory, as compose names it: `COMPOSE_PROJECT_NAME`,
/// else the directory's name lower-cased with only `[a-z0-9_-]` kept.
pub(crate) fn default_compose_project(dir: &Path) -> String {
    compose_project(std::env::var("COMPOSE_PROJECT_NAME").ok(), dir)
}

/// Compose's rule, apart from the environment so tests can state both cases:
/// a non-empty `COMPOSE_PROJECT_NAME` wins, else the directory's name in
/// lower case without the characters Compose drops.
fn compose_project(from_environment: Option<String>, dir: &Path) -> String {
    if let Some(name) = from_environment.filter(|name| !name.is_empty()) {
        return name;
    }
    dir.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn looks_like_postgres(c: &ContainerFacts) -> bool {
    c.env.contains_key("PGDATA") || c.env.contains_key("PG_MAJOR") || c.image.contains("postgres")
}

/// The container a (non-volume, non-datadir) target names: `--container`,
/// else the compose service's, else the one Postgres container of the
/// compose project.
pub(super) async fn container_name(d: &Docker, spec: &TargetSpec, cwd: &Path) -> Result<String> {
    let name = if let Some(c) = &spec.container {
        if spec.compose_service.is_some() {
            return crate::error::usage(
                "--container and --compose-service both name a target — pick one",
            );
        }
        c.clone()
    } else {
        let project = spec
            .compose_project
            .clone()
            .unwrap_or_else(|| default_compose_project(cwd));
        let mut labels = vec![format!("{}={project}", docker::COMPOSE_PROJECT)];
        if let Some(s) = &spec.compose_service {
            labels.push(format!("{}={s}", docker::COMPOSE_SERVICE));
        }
        let names = docker::containers_with_labels(d, &labels).await?;
        let mut candidates = Vec::new();
        for n in names {
            if let Some(c) = docker::inspect_container(d, &n).await?
                && (spec.compose_service.is_some() || looks_like_postgres(&c))
            {
                candidates.push(c.name);
            }
        }
        match (candidates.len(), &spec.compose_service) {
            (1, _) => candidates.remove(0),
            (0, Some(s)) => {
                return crate::error::usage(format!(
                    "no container of compose service {s:?} in project {project:?} — is it created \
                     (`docker compose up -d`)? Use --compose-project if the project has another name"
                ));
            }
            (0, None) => {
                return crate::error::usage(format!(
                    "no target given and no Postgres container found in compose project {project:?} — \
                     pass --container NAME, --compose-service SERVICE, --volume NAME or --datadir PATH, \
                     or set [snapshot] container = \"…\" in ward.toml"
                ));
            }
            (_, _) => {
                return crate::error::usage(format!(
                    "several candidate containers in compose project {project:?} ({}) — pick one with --container",
                    candidates.join(", ")
                ));
            }
        }
    };
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_project_names_follow_compose() {
        let dir = Path::new("/src/My App.v2");
        assert_eq!(compose_project(None, dir), "myappv2");
        assert_eq!(compose_project(Some(String::new()), dir), "myappv2");
        assert_eq!(compose_project(Some("shop".into()), dir), "shop");
    }
}
