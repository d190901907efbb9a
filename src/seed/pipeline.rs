//! Parallel, ordered generation: plan ids, then encode chunks on a thread
//! pool and hand them to a sink in chunk order.
//!
//! Ids are dense and independent of the thread count: a counting pass gives
//! each chunk's row count, and a prefix sum gives each chunk its first id
//! before any row is encoded. Encoding then runs `jobs` chunks at a time and
//! the sink sees them in order, so memory stays bounded by a window of
//! chunks whatever the number of patients.

use std::collections::HashMap;
use std::ops::Range;

use anyhow::Result;
use rayon::prelude::*;

use super::encode::Encoder;
use super::generate::World;
use super::model::TableId;

/// Where each table's ids start, and each chunk's first id.
#[derive(Debug, Clone)]
pub(crate) struct TablePlan {
    pub chunks: Vec<Range<u64>>,
    /// Rows in each chunk.
    pub counts: Vec<u64>,
    /// First id of each chunk.
    pub first_ids: Vec<i64>,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub tables: HashMap<TableId, TablePlan>,
}

impl Plan {
    /// Counts every table's rows per chunk (in parallel) and assigns ids,
    /// starting each table after `next_id(table)`.
    pub(crate) fn new(
        world: &World,
        pool: &rayon::ThreadPool,
        next_id: impl Fn(TableId) -> i64,
    ) -> Plan {
        // Every per-patient table is chunked by patient, and one pass over each
        // chunk counts them all (a patient's history is built once, not once
        // per table).
        let per_patient: Vec<[u64; TableId::ALL.len()]> = pool.install(|| {
            world
                .chunks(TableId::Patients)
                .par_iter()
                .map(|r| world.clinical_counts(r.clone()))
                .collect()
        });
        let tables = TableId::ALL
            .into_iter()
            .map(|t| {
                let chunks = world.chunks(t);
                let counts: Vec<u64> = if t.per_patient() && t != TableId::Patients {
                    per_patient.iter().map(|c| c[t as usize]).collect()
                } else {
                    chunks.iter().map(|r| r.end - r.start).collect()
                };
                let mut id = next_id(t);
                let first_ids = counts
                    .iter()
                    .map(|&c| {
                        let first = id;
                        id += c as i64;
                        first
                    })
                    .collect();
                let plan = TablePlan {
                    chunks,
                    first_ids,
                    rows: counts.iter().sum(),
                    counts,
                };
                (t, plan)
            })
            .collect();
        Plan { tables }
    }

    pub(crate) fn table(&self, t: TableId) -> &TablePlan {
        &self.tables[&t]
    }

    pub(crate) fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// Runs `encode` on every chunk index in `0..chunks`, `jobs` at a time on
/// the pool, and passes the results to `sink` in index order. Stops at the
/// first sink error or when ward is interrupted.
pub(crate) fn ordered<F, S>(
    pool: &rayon::ThreadPool,
    chunks: usize,
    encode: F,
    mut sink: S,
) -> Result<()>
where
    F: Fn(usize) -> Result<(Vec<u8>, u64)> + Sync,
    S: FnMut(Vec<u8>, u64) -> Result<()>,
{
    let window = (pool.current_num_threads() * 2).max(1);
    let indices: Vec<usize> = (0..chunks).collect();
    for batch in indices.chunks(window) {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        let encoded: Vec<(Vec<u8>, u64)> =
            pool.install(|| batch.par_iter().map(|&c| encode(c)).collect::<Result<_>>())?;
        for (bytes, rows) in encoded {
            sink(bytes, rows)?;
        }
    }
    Ok(())
}

/// Encodes chunk `c` of built-in table `t`: its bytes and row count.
pub(crate) fn encode_chunk<E: Encoder>(
    world: &World,
    plan: &Plan,
    t: TableId,
    c: usize,
    mut enc: E,
) -> Result<(Vec<u8>, u64)> {
    let tp = plan.table(t);
    // Prescriptions point at conditions: their chunks line up (same patient chunking).
    let first_condition = plan
        .table(TableId::Conditions)
        .first_ids
        .get(c)
        .copied()
        .unwrap_or(1);
    world.emit(
        t,
        tp.chunks[c].clone(),
        tp.first_ids[c],
        first_condition,
        &mut enc,
    );
    Ok((enc.take(), tp.counts[c]))
}

/// Generator threads allowed per core: more only adds switching, and a typo
/// such as `-j 100000` must not start a hundred thousand threads.
pub(crate) const JOBS_PER_CORE: usize = 4;

/// Refuses a `--jobs` above [`JOBS_PER_CORE`] times the cores.
pub(crate) fn check_jobs(jobs: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = cores * JOBS_PER_CORE;
    if jobs > max {
        return Err(crate::error::UsageError(format!(
            "--jobs {jobs} is more than {max} ({JOBS_PER_CORE} per core on this machine's {cores}) — use at most {max}; the rows are the same whatever --jobs"
        ))
        .into());
    }
    Ok(())
}

/// A thread pool of `jobs` generator threads.
pub(crate) fn pool(jobs: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("ward-gen-{i}"))
        .build()?)
}
