//! The only module that prints: reports on stdout (tables for people, JSON
//! with `--json`), errors and progress bars on stderr, and the logging setup.
//!
//! Progress bars appear only when stderr is a terminal and not `--quiet`;
//! colour is off under `NO_COLOR` or without a terminal. A closed stdout
//! (`ward … | head`) is not an error.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::doctor;
use crate::progress::Progress;
use crate::seed::SeedReport;

/// Logs go to stderr, filtered by `WARD_LOG` (e.g. `debug`, `ward=trace`) or -v/-q.
pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::redact::Stderr)
        .with_ansi(colour())
        .with_target(false)
        .try_init();
}

fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Writes to stdout; a closed pipe ends output quietly.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

fn json<T: Serialize>(value: &T) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("reports serialise")
    ));
}

/// An error, on one line, on stderr (a spec with several mistakes: one line each).
pub fn error(err: &anyhow::Error) {
    let prefix = if colour() {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    if let Some(many) = err.downcast_ref::<crate::seed::custom::spec::SpecErrors>() {
        for line in &many.0 {
            eprintln!("{prefix} {}", crate::redact::text(line).replace('\n', " "));
        }
        return;
    }
    let msg = crate::redact::text(&format!("{err:#}")).replace('\n', " ");
    eprintln!("{prefix} {msg}");
}

/// A note for the user on stderr (not data).
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn seed_report(r: &SeedReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let what = match &r.spec {
        Some(spec) => format!("{} rows by {spec}", thousands(r.total_rows)),
        None => format!("{} patients", thousands(r.patients)),
    };
    let mut s = format!(
        "Seeded {what} into {} (seed {}, {} job{}){}\n\n",
        r.target,
        r.seed,
        r.jobs,
        if r.jobs == 1 { "" } else { "s" },
        if r.created_schema {
            ", created ward's tables"
        } else {
            ""
        }
    );
    let w = r
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(15);
    s += &format!("  {:<w$} {:>12} {:>14}\n", "table", "rows", "rows/s");
    for t in &r.tables {
        s += &format!(
            "  {:<w$} {:>12} {:>14}\n",
            t.table,
            thousands(t.rows),
            thousands(t.rows_per_second as u64)
        );
    }
    s += &format!(
        "  {:<w$} {:>12} {:>14}\n\n{:.2} s · {} rows/s",
        "total",
        thousands(r.total_rows),
        thousands(r.rows_per_second as u64),
        r.seconds,
        thousands(r.rows_per_second as u64),
    );
    if r.spec.is_none() {
        s += &format!(" · {} patients/s", thousands(r.patients_per_second as u64));
    }
    s.push('\n');
    out(&s);
}

pub fn init_spec_report(r: &crate::seed::custom::InitReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = format!(
        "Wrote {}: {} tables to seed, {} columns with guessed generators.\n",
        r.path.display(),
        r.tables,
        r.columns
    );
    if !r.skipped.is_empty() {
        s += &format!(
            "Skipped (migration history and the like): {}\n",
            r.skipped.join(", ")
        );
    }
    for c in &r.unread_checks {
        s += &format!("Check by hand (ward cannot read this CHECK): {c}\n");
    }
    s += &format!("Review it, then: ward seed --spec {}\n", r.path.display());
    out(&s);
}

pub fn doctor_report(r: &doctor::Report, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = String::new();
    for c in &r.checks {
        let mark = match c.status {
            doctor::Status::Ok => "ok     ",
            doctor::Status::Skipped => "skipped",
            doctor::Status::Missing => "MISSING",
        };
        s += &format!("{mark}  {:<26} {}\n", c.name, c.detail);
        if let Some(fix) = &c.fix {
            s += &format!("         {:<26} fix: {fix}\n", "");
        }
    }
    out(&s);
}

pub fn demo_summary(d: &crate::demo::DemoSummary, as_json: bool) {
    if as_json {
        return json(d);
    }
    seed_report(&d.seed, false);
    let mut s =
        String::from("\nA few patients (all fake, NHS numbers from the never-issued 999 range):\n");
    for row in &d.sample {
        s += &format!("  {}\n", row.join("  "));
    }
    if let Some(sn) = &d.snapshot {
        s += &format!(
            "\nSnapshot: {} ({}, {:.1} s) → dropped table {} ({} rows) → restored in {:.1} s → {} rows are back\n",
            sn.name,
            human_bytes(sn.archive_bytes),
            sn.snapshot_seconds,
            sn.dropped_table,
            thousands(sn.rows_before as u64),
            sn.restore_seconds,
            thousands(sn.rows_after_restore as u64)
        );
    }
    if let Some(f) = &d.fast {
        s += &format!(
            "Quick reset: fast snapshot in {:.1} s → deleted {} appointments → restored in {:.1} s → {} are back\n",
            f.snapshot_seconds,
            thousands(f.deleted_rows as u64),
            f.restore_seconds,
            thousands(f.rows_after_restore as u64)
        );
    }
    for (report, name) in d.checks.iter().zip(&d.check_names) {
        s += &format!(
            "\n— ward check of the {name} example migration{} on a clone of this data —\n\n",
            if report.pending.len() == 1 { "" } else { "s" }
        );
        s += &crate::check::report::human(report);
    }
    match (&d.database_url, &d.stop_command) {
        (Some(url), Some(stop)) => {
            s +=
                &format!("\nThe cluster keeps running:\n  psql '{url}'\nStop it with:\n  {stop}\n");
        }
        _ => s += "\nThe throwaway cluster has been stopped and removed (use --keep to keep it).\n",
    }
    out(&s);
}

/// An indicatif bar on stderr, drawn only on a terminal, counting rows or bytes.
pub struct Bar {
    bar: ProgressBar,
    bytes: bool,
}

impl Bar {
    /// A bar that counts rows.
    pub fn new(quiet: bool) -> Bar {
        Bar::with_unit(quiet, false)
    }

    /// A bar that counts bytes.
    pub fn bytes(quiet: bool) -> Bar {
        Bar::with_unit(quiet, true)
    }

    fn with_unit(quiet: bool, bytes: bool) -> Bar {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
            bytes,
        }
    }
}

impl Progress for Bar {
    fn stage(&self, label: &str, total: u64) {
        let (counted, spinner) = if self.bytes {
            (
                "{bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                "{spinner} {msg} {bytes}",
            )
        } else {
            (
                "{human_pos}/{human_len} rows ({per_sec}, {eta})",
                "{spinner} {msg}",
            )
        };
        let template = if total > 0 {
            format!("{{msg:>12}} [{{bar:40}}] {counted}")
        } else {
            spinner.to_string()
        };
        self.bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.bar.set_length(total);
        self.bar.set_position(0);
        if total == 0 {
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(120));
        }
        self.bar.set_message(label.to_string());
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The report of `ward check` in the chosen format, on stdout.
pub fn check_report(
    r: &crate::check::report::Report,
    format: crate::cli::CheckFormat,
    strict: bool,
) {
    use crate::check::report;
    use crate::cli::CheckFormat;
    let dir = r.migrations_dir.as_deref();
    let text = match format {
        CheckFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(r).expect("reports serialise")
        ),
        CheckFormat::Human => report::human(r),
        CheckFormat::Junit => report::junit(r, strict),
        CheckFormat::Github => report::github(r, dir),
        CheckFormat::Markdown => report::markdown(r),
        CheckFormat::Sarif => report::sarif(r, dir),
    };
    // Reports quote SQL, error text and command output that may hold a
    // password (issue #14's threat model): none of it reaches stdout.
    out(&crate::redact::text(&text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

// ---------------------------------------------------------------------------
// `ward snapshot`
// ---------------------------------------------------------------------------

use crate::snapshot::{
    Created, Restored, Verified, human_bytes, manifest::Manifest, retention::Decision,
    store::Listed,
};

/// Whether ward can ask the user a question.
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question on the terminal; `yes` answers it in advance.
/// Without a terminal and without `yes`, refuses with a usage error.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !can_prompt() {
        return crate::error::usage(
            "this replaces or deletes data and needs confirmation, but there is no terminal to ask on — pass --yes",
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

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

/// `ward backup`: the notes (stderr), then the report — a table for people,
/// the whole report with `--json`.
pub fn backup_report(r: &crate::backup::Report, as_json: bool) {
    use crate::backup::Status;
    r.notes.iter().for_each(|n| note(n));
    for s in r.signals.iter().filter(|s| !s.ok) {
        note(&format!(
            "warning: the {} to {} failed ({}); the backup's own result is unchanged",
            s.what,
            s.to,
            s.error.as_deref().unwrap_or("?")
        ));
    }
    if as_json {
        return json(r);
    }
    let head = match r.status {
        Status::Ok => "OK",
        Status::Partial => "PARTIAL (a store failed)",
        Status::Failed => "FAILED",
    };
    let mut s = format!(
        "Backup {} of {}: {head} in {:.1} s\n",
        r.snapshot.as_deref().unwrap_or("(none)"),
        r.target,
        r.seconds
    );
    if let Some(e) = &r.error {
        s += &format!("  error: {e}\n");
    }
    if let Some(c) = &r.create {
        s += &format!(
            "  created {:?} in {:.1} s: {} files, {} → {}{}\n",
            r.method,
            c.seconds,
            thousands(c.file_count),
            human_bytes(c.total_bytes),
            human_bytes(c.compressed_bytes),
            c.downtime_seconds
                .map(|d| format!(", downtime {d:.1} s"))
                .unwrap_or_else(|| ", no downtime".into())
        );
    }
    for st in &r.stores {
        let what = if st.ok {
            let mut w = format!("{} and verified", st.arrived.unwrap_or("?"),);
            if let Some(c) = st.copy_seconds {
                w += &format!(" (copy {c:.1} s)");
            }
            if !st.pruned.is_empty() || !st.kept.is_empty() {
                w += &format!(
                    "; pruned {}, kept {} backup(s)",
                    st.pruned.len(),
                    st.kept.len()
                );
            }
            w
        } else if st.failed_step == Some("skipped") {
            format!("skipped: {}", st.error.as_deref().unwrap_or("?"))
        } else {
            format!(
                "FAILED at {}: {}",
                st.failed_step.unwrap_or("?"),
                st.error.as_deref().unwrap_or("?")
            )
        };
        s += &format!("  store {:<32} {what}\n", st.store);
    }
    for sig in &r.signals {
        s += &format!(
            "  {:<12} {:<28} {}\n",
            sig.what,
            sig.to,
            if sig.ok { "sent" } else { "NOT delivered" }
        );
    }
    out(&s);
}

/// `ward backup --print-systemd`: the units, or where they were written.
pub fn backup_units(
    u: &crate::backup::systemd::Units,
    written: Option<&[std::path::PathBuf]>,
    as_json: bool,
) {
    if as_json {
        return json(&serde_json::json!({
            "service": u.service,
            "timer": u.timer,
            "written": written,
        }));
    }
    match written {
        Some(paths) => {
            let mut s = String::new();
            for p in paths {
                s += &format!("Wrote {}\n", p.display());
            }
            s += "Then: systemctl daemon-reload && systemctl enable --now ward-backup.timer\n";
            out(&s);
        }
        None => out(&format!(
            "# ward-backup.service\n{}\n# ward-backup.timer\n{}",
            u.service, u.timer
        )),
    }
}
