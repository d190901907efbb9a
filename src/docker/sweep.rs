//! The labels on everything ward creates for its own work, and the sweep
//! that removes what a killed ward left: helpers whose owning process (by
//! pid, start time, host and pid namespace) is gone.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};

use super::client::{Docker, bounded};
use super::containers::remove_container;
use super::helper::{HELPER_LABEL, remove_network};
use super::volumes::remove_volume;
use crate::process::start_time;

/// Labels of a helper: what it is, and which ward process (on which host) owns it.
pub(super) fn helper_labels() -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(HELPER_LABEL.to_string(), "1".to_string());
    labels.insert("ward.pid".to_string(), std::process::id().to_string());
    labels.insert("ward.host".to_string(), hostname());
    if let Some(start) = start_time(std::process::id()) {
        labels.insert(START_LABEL.to_string(), start.to_string());
    }
    if let Some(namespace) = pid_namespace() {
        labels.insert(PIDNS_LABEL.to_string(), namespace);
    }
    labels
}

/// The owning ward's start time (clock ticks since boot): a pid alone is
/// reused, so the sweep compares it as journals' `Owner` does.
const START_LABEL: &str = "ward.pid_start";
/// The owning ward's pid namespace: a ward in another one (a container with
/// the host's name) sees other pids, so the sweep cannot judge its helpers.
const PIDNS_LABEL: &str = "ward.pidns";

/// This process's pid namespace, e.g. `pid:[4026531836]`.
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Removes helper containers whose ward process (on this host) has died, e.g.
/// after a `kill -9`, then their volumes and networks. Helpers of live ward
/// processes are left alone. Best effort: an engine that fails to answer
/// leaves the rest for the next sweep.
pub(crate) async fn sweep_orphans(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![format!("{HELPER_LABEL}=1")])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    if let Ok(Ok(list)) = bounded("listing helpers", docker.list_containers(Some(opts))).await {
        for c in list {
            if orphaned(&c.labels.unwrap_or_default())
                && let Some(id) = c.id
            {
                tracing::info!("removing helper container {id} left by a ward that was killed");
                let _ = remove_container(docker, &id).await;
            }
        }
    }
    // Then the throwaway volumes and networks (free only once their container is gone).
    let opts = ListVolumesOptionsBuilder::new().filters(&filters).build();
    if let Ok(Ok(list)) = bounded("listing volumes", docker.list_volumes(Some(opts))).await {
        for v in list.volumes.unwrap_or_default() {
            if orphaned(&v.labels) {
                tracing::info!("removing throwaway volume {} left by a killed ward", v.name);
                let _ = remove_volume(docker, &v.name).await;
            }
        }
    }
    let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
    if let Ok(Ok(list)) = bounded("listing networks", docker.list_networks(Some(opts))).await {
        for n in list {
            if let Some(name) = n.name
                && orphaned(&n.labels.unwrap_or_default())
            {
                tracing::info!("removing throwaway network {name} left by a killed ward");
                let _ = remove_network(docker, &name).await;
            }
        }
    }
}

/// Sweeps what killed wards of this host left behind — throwaway servers
/// still serving a copy of real data, helpers, volumes, networks — if the
/// engine answers within a few seconds; every ward invocation calls it
/// first, so a `kill -9` is cleaned up by the next command of any kind.
/// Silent when there is no engine.
pub(crate) async fn sweep_if_reachable() {
    let Ok(docker) = Docker::connect_with_defaults() else {
        return;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        if let Ok(d) = docker.negotiate_version().await {
            sweep_orphans(&d).await;
        }
    })
    .await;
}

/// Made by a ward process of this host that no longer runs. Without a
/// `/proc` to ask (not Linux, or hidden), nothing counts as orphaned.
fn orphaned(labels: &HashMap<String, String>) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    orphaned_seen_from(labels, &hostname(), pid_namespace().as_deref())
}

/// The sweep's decision, judged from a process on `host` in the pid
/// namespace `namespace`. Labels of older wards (no start time or
/// namespace) are judged by pid and host alone, as before.
fn orphaned_seen_from(
    labels: &HashMap<String, String>,
    host: &str,
    namespace: Option<&str>,
) -> bool {
    let (Some(pid), Some(label_host)) = (labels.get("ward.pid"), labels.get("ward.host")) else {
        return false;
    };
    if label_host != host {
        return false;
    }
    if let (Some(theirs), Some(ours)) = (labels.get(PIDNS_LABEL), namespace)
        && theirs != ours
    {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return true;
    }
    match (
        labels.get(START_LABEL).and_then(|s| s.parse::<u64>().ok()),
        start_time(pid),
    ) {
        // The pid is alive but started at another time: reused, the owner is gone.
        (Some(recorded), Some(now)) => recorded != now,
        // No start time recorded (an older ward) or unreadable: the pid
        // exists, so assume it is the owner.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_judges_pid_start_time_host_and_pid_namespace() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let host = hostname();
        let ours = pid_namespace();
        let ours = ours.as_deref();
        let mut labels = HashMap::from([
            ("ward.pid".to_string(), pid.to_string()),
            ("ward.host".to_string(), host.clone()),
            (
                START_LABEL.to_string(),
                start_time(pid).unwrap().to_string(),
            ),
            (PIDNS_LABEL.to_string(), ours.unwrap().to_string()),
        ]);
        assert!(!orphaned_seen_from(&labels, &host, ours), "a live owner");
        let reused = start_time(pid).unwrap() + 1;
        labels.insert(START_LABEL.to_string(), reused.to_string());
        assert!(orphaned_seen_from(&labels, &host, ours), "a reused pid");
        assert!(
            !orphaned_seen_from(&labels, "other-host.invalid", ours),
            "another host: cannot tell"
        );
        assert!(
            !orphaned_seen_from(&labels, &host, Some("pid:[1]")),
            "another pid namespace: cannot tell"
        );
        let mut old = labels.clone();
        old.remove(START_LABEL);
        old.remove(PIDNS_LABEL);
        assert!(
            !orphaned_seen_from(&old, &host, ours),
            "old labels: pid alive"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            orphaned_seen_from(&labels, &host, ours),
            "the owner is gone"
        );
        assert!(
            orphaned_seen_from(&old, &host, ours),
            "old labels: pid gone"
        );
        let mut elsewhere = labels.clone();
        elsewhere.insert(PIDNS_LABEL.to_string(), "pid:[1]".to_string());
        assert!(
            !orphaned_seen_from(&elsewhere, &host, ours),
            "a pid missing here may live in another namespace"
        );
    }
}
