//! The reports of the `ward snapshot` verbs.

use serde::Serialize;

use super::{json, note, out};
use crate::snapshot::{
    Created, Restored, Verified, manifest::Manifest, retention::Decision, store::Listed,
};
use crate::units::{human_bytes, thousands};

/// The result's notes (on stderr, also with `--json`), then the result.
pub(crate) fn snapshot_created(c: &Created, as_json: bool) {
    c.notes.iter().for_each(|n| note(n));
    if as_json {
        return json(c);
    }
    let mut text = format!(
        "Snapshot {} of {} ({:?}, {} files, {} → {}) in {:.1} s\n  {}\n",
        c.name,
        c.target,
        c.method,
        thousands(c.file_count),
        human_bytes(c.total_bytes),
        human_bytes(c.compressed_bytes),
        c.seconds,
        c.archive
    );
    if let Some(d) = c.downtime_seconds {
        text += &format!(
            "  downtime {d:.1} s; the container is {}\n",
            if c.restarted {
                "running again"
            } else {
                "stopped (as it was)"
            }
        );
    }
    out(&text);
}

#[derive(Serialize)]
struct ListRow<'a> {
    name: &'a str,
    id: &'a str,
    created_at: String,
    method: &'a str,
    source: String,
    pg_major: u32,
    total_bytes: u64,
    compressed_bytes: u64,
    labels: &'a std::collections::BTreeMap<String, String>,
    last_verified: Option<String>,
    /// `database: tool version` of each database with a migration history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    migration_heads: Vec<String>,
}

/// `db: tool version` for each database of `m` whose migration head is known.
fn migration_heads(m: &Manifest) -> Vec<String> {
    m.database
        .iter()
        .flat_map(|f| &f.databases)
        .filter_map(|d| {
            let h = d.migration_head.as_ref()?;
            Some(format!("{}: {} {}", d.name, h.tool, h.version))
        })
        .collect()
}

fn source_of(m: &Manifest) -> String {
    if let Some(t) = &m.template {
        return format!("db {} (in cluster)", t.source_database);
    }
    let s = &m.source;
    match (
        &s.compose_project,
        &s.compose_service,
        &s.container,
        &s.volume,
        &s.datadir,
    ) {
        (Some(p), Some(svc), _, _, _) => format!("{p}/{svc}"),
        (_, _, Some(c), _, _) => c.clone(),
        (_, _, _, Some(v), _) => format!("volume {v}"),
        (_, _, _, _, Some(d)) => d.clone(),
        _ => "?".into(),
    }
}

/// Why an incomplete snapshot is listed apart.
const INCOMPLETE: &str = "an archive without a manifest, left by an interrupted create";

pub(crate) fn snapshot_list(list: &[Listed], as_json: bool) {
    if as_json {
        return snapshot_list_json(list);
    }
    if list.is_empty() {
        return out("No snapshots yet — take one with `ward snapshot create`.\n");
    }
    let mut text = format!(
        "{:<36} {:<20} {:<7} {:<24} {:>4} {:>10} {:>10}\n",
        "name", "created (UTC)", "method", "source", "pg", "data", "archive"
    );
    for listed in list {
        match listed {
            Listed::Ok(manifest) => {
                text += &format!(
                    "{:<36} {:<20} {:<7} {:<24} {:>4} {:>10} {:>10}\n",
                    manifest.name,
                    manifest.created_at.format("%Y-%m-%d %H:%M:%S"),
                    manifest.method,
                    source_of(manifest),
                    manifest.pg_major,
                    human_bytes(manifest.total_bytes),
                    human_bytes(manifest.compressed_bytes)
                );
                for head in migration_heads(manifest) {
                    text += &format!("{:<36} migrations {head}\n", "");
                }
            }
            Listed::Unreadable { name, problem } => {
                text += &format!("{name:<36} UNREADABLE MANIFEST: {problem}\n")
            }
            Listed::Incomplete {
                name,
                archive_bytes,
            } => {
                text += &format!(
                    "{name:<36} INCOMPLETE: {INCOMPLETE} ({}) — `ward snapshot delete {name}` removes it\n",
                    human_bytes(*archive_bytes)
                )
            }
        }
    }
    out(&text);
}

/// `snapshot list --json`: the snapshots, and apart from them the
/// unreadable manifests and the incomplete archives.
fn snapshot_list_json(list: &[Listed]) {
    #[derive(Serialize)]
    struct Bad<'a> {
        name: &'a str,
        problem: &'a str,
    }
    #[derive(Serialize)]
    struct Unfinished<'a> {
        name: &'a str,
        archive_bytes: u64,
        problem: &'static str,
    }
    #[derive(Serialize)]
    struct All<'a> {
        snapshots: Vec<ListRow<'a>>,
        unreadable: Vec<Bad<'a>>,
        incomplete: Vec<Unfinished<'a>>,
    }
    let mut all = All {
        snapshots: Vec::new(),
        unreadable: Vec::new(),
        incomplete: Vec::new(),
    };
    for listed in list {
        match listed {
            Listed::Ok(manifest) => all.snapshots.push(ListRow {
                name: &manifest.name,
                id: &manifest.id,
                created_at: manifest.created_at.to_rfc3339(),
                method: &manifest.method,
                source: source_of(manifest),
                pg_major: manifest.pg_major,
                total_bytes: manifest.total_bytes,
                compressed_bytes: manifest.compressed_bytes,
                labels: &manifest.labels,
                last_verified: manifest.last_verified.map(|t| t.to_rfc3339()),
                migration_heads: migration_heads(manifest),
            }),
            Listed::Unreadable { name, problem } => all.unreadable.push(Bad { name, problem }),
            Listed::Incomplete {
                name,
                archive_bytes,
            } => all.incomplete.push(Unfinished {
                name,
                archive_bytes: *archive_bytes,
                problem: INCOMPLETE,
            }),
        }
    }
    json(&all)
}

pub(crate) fn snapshot_show(manifest: &Manifest, as_json: bool) {
    if as_json {
        return json(manifest);
    }
    let mut text = format!(
        "name            {}\nid              {}\ncreated         {}\nmethod          {}\nsource          {}\n",
        manifest.name,
        manifest.id,
        manifest.created_at.to_rfc3339(),
        manifest.method,
        source_of(manifest)
    );
    if let Some(i) = &manifest.source.image {
        text += &format!(
            "image           {i} ({})\n",
            manifest.source.image_id.as_deref().unwrap_or("-")
        );
    }
    if let Some(v) = &manifest.source.volume {
        text += &format!(
            "volume          {v} (driver {})\n",
            manifest.source.volume_driver.as_deref().unwrap_or("-")
        );
    }
    text += &format!(
        "postgres        {} (system id {})\npgdata          {} (in volume: {:?})\nowner           {}:{}\nfiles           {} ({}), archive {} sha256 {}\n",
        manifest.pg_major,
        manifest.system_identifier.as_deref().unwrap_or("-"),
        manifest.pgdata.as_deref().unwrap_or("-"),
        manifest.pgdata_rel,
        manifest.uid.map(|u| u.to_string()).unwrap_or("-".into()),
        manifest.gid.map(|u| u.to_string()).unwrap_or("-".into()),
        thousands(manifest.file_count),
        human_bytes(manifest.total_bytes),
        human_bytes(manifest.compressed_bytes),
        manifest.archive_sha256
    );
    if let Some(d) = manifest.downtime_seconds {
        text += &format!("downtime        {d:.1} s\n");
    }
    for (k, v) in &manifest.labels {
        text += &format!("label           {k}={v}\n");
    }
    if let Some(db) = &manifest.database {
        for d in &db.databases {
            text += &format!(
                "database        {} ({}, {} tables, schema {})\n",
                d.name,
                human_bytes(d.size_bytes.max(0) as u64),
                d.tables.len(),
                d.schema_fingerprint
            );
            if let Some(h) = &d.migration_head {
                text += &format!(
                    "  migrations    {} at {} ({} applied)\n",
                    h.tool, h.version, h.applied
                );
            }
        }
    }
    out(&text);
}

pub(crate) fn snapshot_deleted(name: &str, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "deleted": name }));
    }
    out(&format!("Deleted snapshot {name}\n"));
}

pub(crate) fn snapshot_copied(c: &crate::snapshot::copy::Copied, as_json: bool) {
    if as_json {
        return json(c);
    }
    out(&format!(
        "Copied snapshot {} ({}) from {} to {} in {:.1} s; checked on arrival ({})\n",
        c.name,
        human_bytes(c.bytes),
        c.from,
        c.to,
        c.seconds,
        c.verified
    ));
}

pub(crate) fn snapshot_verified(v: &Verified, as_json: bool) {
    if as_json {
        return json(v);
    }
    if v.ok && v.scope == crate::snapshot::SCOPE_STORED {
        out(&format!(
            "Snapshot {} is intact as stored: {} of ciphertext match the manifest's SHA-256 \
             (encrypted; pass --identity to check every file)\n",
            v.name,
            human_bytes(v.bytes),
        ));
    } else if v.ok {
        out(&format!(
            "Snapshot {} is intact: {} entries, {} of tar verified against the manifest\n{}",
            v.name,
            thousands(v.entries),
            human_bytes(v.bytes),
            v.deep
                .as_ref()
                .map(|d| format!("Deep check: {d}\n"))
                .unwrap_or_default()
        ));
    } else {
        let mut text = format!("Snapshot {} is DAMAGED:\n", v.name);
        for p in &v.problems {
            text += &format!("  - {p}\n");
        }
        out(&text);
    }
}

/// The result's notes (on stderr, also with `--json`), then the result.
pub(crate) fn snapshot_restored(report: &Restored, as_json: bool) {
    report.notes.iter().for_each(|n| note(n));
    if as_json {
        return json(report);
    }
    let mut text = format!(
        "Restored snapshot {} into {} in {:.1} s\n",
        report.name, report.target, report.seconds
    );
    if let Some(sf) = &report.safety_snapshot {
        text += &format!("  safety snapshot of the previous data: {sf}\n");
    }
    if let Some(q) = &report.sanity {
        text += &format!("  sanity check: {q}\n");
    }
    if let (Some(st), Some(sw)) = (report.stage_seconds, report.swap_seconds) {
        text += &format!(
            "  phases: staged beside the running data in {st:.1} s, swapped in {sw:.2} s, started in {:.1} s; downtime {:.1} s\n",
            report.start_seconds.unwrap_or(0.0),
            report.downtime_seconds.unwrap_or(0.0)
        );
    }
    if report.running {
        text += "  the container is running\n";
    }
    out(&text);
}

pub(crate) fn snapshot_pruned(d: &[Decision], dry_run: bool, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "dry_run": dry_run, "decisions": d }));
    }
    let mut text = String::new();
    for x in d {
        if x.keep {
            text += &format!("keep    {:<36} {}\n", x.name, x.reasons.join(", "));
        } else {
            text += &format!(
                "{} {:<36}\n",
                if dry_run { "would delete" } else { "deleted" },
                x.name
            );
        }
    }
    if d.is_empty() {
        text += "No snapshots.\n";
    }
    out(&text);
}

pub(crate) fn fast_snapshot_created(m: &crate::snapshot::manifest::Manifest, as_json: bool) {
    if as_json {
        return json(m);
    }
    let Some(t) = &m.template else { return };
    out(&format!(
        "Fast snapshot {:?} of database {} taken in {:.2} s ({} in the cluster as {}).\n\
         It lives inside the cluster: it is gone with the volume. For a durable copy use --persist\n\
         or a volume snapshot.{}\n",
        m.name,
        t.source_database,
        t.seconds,
        human_bytes(t.size_bytes.max(0) as u64),
        t.template_database,
        m.labels
            .get("ward.persisted")
            .map(|d| format!("\nDurable copy: snapshot {d:?}."))
            .unwrap_or_default()
    ));
}

pub(crate) fn fast_snapshot_restored(
    name: &str,
    report: &crate::snapshot::template::Restored,
    as_json: bool,
) {
    if as_json {
        return json(report);
    }
    out(&format!(
        "Restored database {} from fast snapshot {name:?} in {:.2} s{}.\n",
        report.database,
        report.seconds,
        if report.sessions_ended > 0 {
            format!(" ({} session(s) ended)", report.sessions_ended)
        } else {
            String::new()
        }
    ));
}

/// `snapshot recover`: what was finished or undone.
pub(crate) fn snapshot_recovered(done: Option<&str>, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "recovered": done.is_some(), "done": done }));
    }
    match done {
        Some(d) => out(&format!("Recovered: {d}\n")),
        None => out("Nothing to recover: no interrupted ward left work on this target\n"),
    }
}
