//! `ward seed --export DIR`: the same rows as the database load, written as
//! one CSV or JSONL file per table. No database needed.
//!
//! Each file is written under a temporary name in DIR and renamed into place
//! only when every table is complete, so an interrupted export leaves the
//! directory as it was.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::encode::{Csv, Jsonl};
use super::generate::World;
use super::model::TableId;
use super::pipeline::{self, Plan};
use super::spec::Spec;
use super::{RunFacts, SeedReport, TableReport, check_patients, per_second};
use crate::progress::Progress;

/// Output formats for `ward seed --export`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

pub(crate) fn export(
    dir: &Path,
    format: ExportFormat,
    seed: u64,
    patients: u64,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<SeedReport> {
    check_patients(0, patients)?;
    let started = Instant::now();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the export directory {}", dir.display()))?;
    let world = World::new(Spec::builtin()?, seed, patients);
    let pool = pipeline::pool(jobs)?;
    let plan = Plan::new(&world, &pool, |_| 1);
    progress.stage("exporting", plan.total_rows());

    let ext = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Jsonl => "jsonl",
    };
    let mut files = Vec::new();
    let mut tables = Vec::new();
    for t in TableId::ALL {
        let table_started = Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", t.name()))
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp);
        let mut rows = 0;
        let mut sink = |bytes: Vec<u8>, n: u64| -> Result<()> {
            out.write_all(&bytes)?;
            rows += n;
            progress.advance(n);
            Ok(())
        };
        let chunks = plan.table(t).chunks.len();
        match format {
            ExportFormat::Csv => {
                sink(Csv::header(t.table()), 0)?;
                let encode = |c| pipeline::encode_chunk(&world, &plan, t, c, Csv::new());
                pipeline::ordered(&pool, chunks, encode, sink)?;
            }
            ExportFormat::Jsonl => {
                let encode = |c| pipeline::encode_chunk(&world, &plan, t, c, Jsonl::new(t.table()));
                pipeline::ordered(&pool, chunks, encode, sink)?;
            }
        }
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        files.push((tmp, dir.join(format!("{}.{ext}", t.name()))));
        let seconds = table_started.elapsed().as_secs_f64();
        tables.push(TableReport {
            table: t.name().into(),
            rows,
            seconds,
            rows_per_second: per_second(rows, seconds),
        });
    }
    for (tmp, path) in files {
        tmp.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    progress.finish();
    Ok(SeedReport::new(
        RunFacts {
            target: dir.display().to_string(),
            seed,
            patients,
            spec: None,
            jobs,
            created_schema: false,
        },
        tables,
        started,
    ))
}
