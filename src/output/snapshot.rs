//! The reports of the `ward snapshot` verbs.

use serde::Serialize;

use super::{json, note, out, thousands};
use crate::snapshot::{
    Created, Restored, Verified, human_bytes, manifest::Manifest, retention::Decision,
    store::Listed,
};

/// The result's notes (on stderr, also with `--json`), then the result.
pub fn snapshot_created(c: &Created, as_json: bool) {
    c.notes.iter().for_each(|n| note(n));
    if as_json {
        return json(c);
    }
    let mut s = format!(
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
        s += &format!(
            "  downtime {d:.1} s; the container is {}\n",
            if c.restarted {
                "running again"
            } else {
                "stopped (as it was)"
            }
        );
    }
    out(&s);
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

pub fn snapshot_list(list: &[Listed], as_json: bool) {
    if as_json {
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
        for l in list {
            match l {
                Listed::Ok(m) => all.snapshots.push(ListRow {
                    name: &m.name,
                    id: &m.id,
                    created_at: m.created_at.to_rfc3339(),
                    method: &m.method,
                    source: source_of(m),
                    pg_major: m.pg_major,
                    total_bytes: m.total_bytes,
                    compressed_bytes: m.compressed_bytes,
                    labels: &m.labels,
                    last_verified: m.last_verified.map(|t| t.to_rfc3339()),
                    migration_heads: migration_heads(m),
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
        return json(&all);
    }
    if list.is_empty() {
        return out("No snapshots yet — take one with `ward snapshot create`.\n");
    }
    let mut s = format!(
        "{:<36} {:<20} {:<7} {:<24} {:>4} {:>10} {:>10}\n",
        "name", "created (UTC)", "method", "source", "pg", "data", "archive"
    );
    for l in list {
        match l {
            Listed::Ok(m) => {
                s += &format!(
                    "{:<36} {:<20} {:<7} {:<24} {:>4} {:>10} {:>10}\n",
                    m.name,
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.method,
                    source_of(m),
                    m.pg_major,
                    human_bytes(m.total_bytes),
                    human_bytes(m.compressed_bytes)
                );
                for h in migration_heads(m) {
                    s += &format!("{:<36} migrations {h}\n", "");
                }
            }
            Listed::Unreadable { name, problem } => {
                s += &format!("{name:<36} UNREADABLE MANIFEST: {problem}\n")
            }
            Listed::Incomplete {
                name,
                archive_bytes,
            } => {
                s += &format!(
                    "{name:<36} INCOMPLETE: {INCOMPLETE} ({}) — `ward snapshot delete {name}` removes it\n",
                    human_bytes(*archive_bytes)
                )
            }
        }
    }
    out(&s);
}

pub fn snapshot_show(m: &Manifest, as_json: bool) {
    if as_json {
        return json(m);
    }
    let mut s = format!(
        "name            {}\nid              {}\ncreated         {}\nmethod          {}\nsource          {}\n",
        m.name,
        m.id,
        m.created_at.to_rfc3339(),
        m.method,
        source_of(m)
    );
    if let Some(i) = &m.source.image {
        s += &format!(
            "image           {i} ({})\n",
            m.source.image_id.as_deref().unwrap_or("-")
        );
    }
    if let Some(v) = &m.source.volume {
        s += &format!(
            "volume          {v} (driver {})\n",
            m.source.volume_driver.as_deref().unwrap_or("-")
        );
    }
    s += &format!(
        "postgres        {} (system id {})\npgdata          {} (in volume: {:?})\nowner           {}:{}\nfiles           {} ({}), archive {} sha256 {}\n",
        m.pg_major,
        m.system_identifier.as_deref().unwrap_or("-"),
        m.pgdata.as_deref().unwrap_or("-"),
        m.pgdata_rel,
        m.uid.map(|u| u.to_string()).unwrap_or("-".into()),
        m.gid.map(|u| u.to_string()).unwrap_or("-".into()),
        thousands(m.file_count),
        human_bytes(m.total_bytes),
        human_bytes(m.compressed_bytes),
        m.archive_sha256
    );
    if let Some(d) = m.downtime_seconds {
        s += &format!("downtime        {d:.1} s\n");
    }
    for (k, v) in &m.labels {
        s += &format!("label           {k}={v}\n");
    }
    if let Some(db) = &m.database {
        for d in &db.databases {
            s += &format!(
                "database        {} ({}, {} tables, schema {})\n",
                d.name,
                human_bytes(d.size_bytes.max(0) as u64),
                d.tables.len(),
                d.schema_fingerprint
            );
            if let Some(h) = &d.migration_head {
                s += &format!(
                    "  migrations    {} at {} ({} applied)\n",
                    h.tool, h.version, h.applied
                );
            }
        }
    }
    out(&s);
}

pub fn snapshot_deleted(name: &str, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "deleted": name }));
    }
    out(&format!("Deleted snapshot {name}\n"));
}

pub fn snapshot_copied(c: &crate::snapshot::copy::Copied, as_json: bool) {
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

pub fn snapshot_verified(v: &Verified, as_json: bool) {
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
        let mut s = format!("Snapshot {} is DAMAGED:\n", v.name);
        for p in &v.problems {
            s += &format!("  - {p}\n");
        }
        out(&s);
    }
}

/// The result's notes (on stderr, also with `--json`), then the result.
pub fn snapshot_restored(r: &Restored, as_json: bool) {
    r.notes.iter().for_each(|n| note(n));
    if as_json {
        return json(r);
    }
    let mut s = format!(
        "Restored snapshot {} into {} in {:.1} s\n",
        r.name, r.target, r.seconds
    );
    if let Some(sf) = &r.safety_snapshot {
        s += &format!("  safety snapshot of the previous data: {sf}\n");
    }
    if let Some(q) = &r.sanity {
        s += &format!("  sanity check: {q}\n");
    }
    if let (Some(st), Some(sw)) = (r.stage_seconds, r.swap_seconds) {
        s += &format!(
            "  phases: staged beside the running data in {st:.1} s, swapped in {sw:.2} s, started in {:.1} s; downtime {:.1} s\n",
            r.start_seconds.unwrap_or(0.0),
            r.downtime_seconds.unwrap_or(0.0)
        );
    }
    if r.running {
        s += "  the container is running\n";
    }
    out(&s);
}

pub fn snapshot_pruned(d: &[Decision], dry_run: bool, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "dry_run": dry_run, "decisions": d }));
    }
    let mut s = String::new();
    for x in d {
        if x.keep {
            s += &format!("keep    {:<36} {}\n", x.name, x.reasons.join(", "));
        } else {
            s += &format!(
                "{} {:<36}\n",
                if dry_run { "would delete" } else { "deleted" },
                x.name
            );
        }
    }
    if d.is_empty() {
        s += "No snapshots.\n";
    }
    out(&s);
}

pub fn fast_snapshot_created(m: &crate::snapshot::manifest::Manifest, as_json: bool) {
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
        crate::snapshot::human_bytes(t.size_bytes.max(0) as u64),
        t.template_database,
        m.labels
            .get("ward.persisted")
            .map(|d| format!("\nDurable copy: snapshot {d:?}."))
            .unwrap_or_default()
    ));
}

pub fn fast_snapshot_restored(name: &str, r: &crate::snapshot::template::Restored, as_json: bool) {
    if as_json {
        return json(r);
    }
    out(&format!(
        "Restored database {} from fast snapshot {name:?} in {:.2} s{}.\n",
        r.database,
        r.seconds,
        if r.sessions_ended > 0 {
            format!(" ({} session(s) ended)", r.sessions_ended)
        } else {
            String::new()
        }
    ));
}

/// `snapshot recover`: what was finished or undone.
pub fn snapshot_recovered(done: Option<&str>, as_json: bool) {
    if as_json {
        return json(&serde_json::json!({ "recovered": done.is_some(), "done": done }));
    }
    match done {
        Some(d) => out(&format!("Recovered: {d}\n")),
        None => out("Nothing to recover: no interrupted ward left work on this target\n"),
    }
}
