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
pub struct TablePlan {
    pub table: TableId,
    pub chunks: Vec<Range<u64>>,
    /// Rows in each chunk.
    pub counts: Vec<u64>,
    /// First id of each chunk.
    pub first_ids: Vec<i64>,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub tables: HashMap<TableId, TablePlan>,
}

impl Plan {
    /// Counts every table's rows per chunk (in parallel) and assigns ids,
    /// starting each table after `next_id(table)`.
    pub fn new(world: &World, pool: &rayon::ThreadPool, next_id: impl Fn(TableId) -> i64) -> Plan {
        let tables = TableId::ALL
            .into_iter()
            .map(|t| {
                let chunks = world.chunks(t);
                let counts: Vec<u64> = pool.install(|| {
                    chunks
                        .par_iter()
                        .map(|r| world.count(t, r.clone()))
                        .collect()
                });
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
                    table: t,
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

    pub fn table(&self, t: TableId) -> &TablePlan {
        &self.tables[&t]
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// Encodes every chunk of `t` with encoders from `make`, passing each chunk's
/// bytes and row count to `sink` in order. Stops at the first sink error.
pub fn produce<E, M, S>(
    world: &World,
    plan: &Plan,
    t: TableId,
    pool: &rayon::ThreadPool,
    make: M,
    mut sink: S,
) -> Result<()>
where
    E: Encoder,
    M: Fn() -> E + Sync,
    S: FnMut(Vec<u8>, u64) -> Result<()>,
{
    let tp = plan.table(t);
    // Prescriptions point at conditions: their chunks line up (same patient chunking).
    let conditions = plan.table(TableId::Conditions);
    let window = pool.current_num_threads() * 2;
    let indices: Vec<usize> = (0..tp.chunks.len()).collect();
    for batch in indices.chunks(window.max(1)) {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        let encoded: Vec<(Vec<u8>, u64)> = pool.install(|| {
            batch
                .par_iter()
                .map(|&c| {
                    let mut enc = make();
                    let first_condition = conditions.first_ids.get(c).copied().unwrap_or(1);
                    world.emit(
                        t,
                        tp.chunks[c].clone(),
                        tp.first_ids[c],
                        first_condition,
                        &mut enc,
                    );
                    (enc.take(), tp.counts[c])
                })
                .collect()
        });
        for (bytes, rows) in encoded {
            sink(bytes, rows)?;
        }
    }
    Ok(())
}

/// A thread pool of `jobs` generator threads.
pub fn pool(jobs: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("ward-gen-{i}"))
        .build()?)
}
