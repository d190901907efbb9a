//! Loading the generated rows into Postgres: one transaction, one binary COPY
//! per table, keys and indexes built after the load when ward creates the
//! tables.
//!
//! Everything (creating tables, truncating, the COPYs, the constraints,
//! advancing the id sequences) happens in one transaction, so a failure or an
//! interrupt leaves the database exactly as it was.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::{Client, Transaction};

use super::encode::{BINARY_HEADER, BINARY_TRAILER, Binary};
use super::generate::{Practice, World};
use super::model::{CONSTRAINTS_SQL, SCHEMA_SQL, TableId};
use super::pipeline::{self, Plan};
use super::spec::Spec;
use super::{RunFacts, SeedReport, TableReport, check_patients, per_second};
use crate::error::UsageError;
use crate::pg::quote_ident;
use crate::progress::Progress;

/// What to do with rows already in ward's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse if any table holds rows.
    Refuse,
    Truncate,
    Append,
}

#[derive(Debug, Clone)]
pub(crate) struct LoadOptions {
    pub schema: String,
    pub seed: u64,
    pub patients: u64,
    pub jobs: usize,
    pub existing: Existing,
}

pub(crate) async fn load(
    client: &mut Client,
    target: String,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<SeedReport> {
    check_patients(0, opts.patients)?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    let schema = quote_ident(&opts.schema);
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&opts.schema],
        )
        .await?
        .get(0);
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .with_context(|| format!("cannot create schema {}", opts.schema))?;
    }
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .await?;

    let created = ensure_tables(&tx, &opts.schema).await?;
    let spec = Spec::builtin()?;
    let world = match prepare_existing(&tx, opts, created).await? {
        Some((first_patient, practices)) => {
            check_patients(first_patient, opts.patients)?;
            check_practice_capacity(
                first_patient,
                opts.patients,
                practices.len() as u64,
                spec.practices.patients_per_practice,
            )?;
            World::with_practices(
                spec,
                opts.seed,
                first_patient,
                opts.patients,
                practices,
                false,
            )
        }
        None => World::new(spec, opts.seed, opts.patients),
    };
    let next_ids = next_ids(&tx).await?;
    let world = Arc::new(world);
    let pool = Arc::new(pipeline::pool(opts.jobs)?);
    let plan = Arc::new(Plan::new(&world, &pool, |t| next_ids[t as usize]));
    tracing::info!(
        "planned {} rows in {:.2?}",
        plan.total_rows(),
        started.elapsed()
    );
    progress.stage("seeding", plan.total_rows());

    let mut tables = Vec::new();
    for t in TableId::ALL {
        let table_started = Instant::now();
        let rows = copy_table(&tx, &world, &plan, &pool, t, progress).await?;
        let seconds = table_started.elapsed().as_secs_f64();
        tables.push(TableReport {
            table: t.name().into(),
            rows,
            seconds,
            rows_per_second: per_second(rows, seconds),
        });
    }
    tracing::info!("copied all tables at {:.2?}", started.elapsed());
    if created {
        progress.stage("building keys and indexes", 0);
        // Index builds sort in memory when they can: give this transaction
        // (only) more than the server's often tiny default.
        tx.batch_execute(
            "SELECT set_config('maintenance_work_mem', '256MB', true)
             FROM pg_settings WHERE name = 'maintenance_work_mem' AND setting::bigint < 262144",
        )
        .await?;
        tx.batch_execute(CONSTRAINTS_SQL)
            .await
            .context("building keys and indexes")?;
    }
    advance_sequences(&tx).await?;
    tx.commit().await.context("committing the seed")?;
    progress.finish();
    Ok(SeedReport::new(
        RunFacts {
            target,
            seed: opts.seed,
            patients: opts.patients,
            spec: None,
            jobs: opts.jobs,
            created_schema: created,
        },
        tables,
        started,
    ))
}

/// Creates ward's tables when none exist; checks their shape when all do.
/// Returns whether they were created.
async fn ensure_tables(tx: &Transaction<'_>, schema: &str) -> Result<bool> {
    let names: Vec<&str> = TableId::ALL.iter().map(|t| t.name()).collect();
    let rows = tx
        .query(
            "SELECT table_name::text, column_name::text, data_type::text,
                    is_nullable = 'YES' OR column_default IS NOT NULL OR is_identity = 'YES'
                        OR is_generated <> 'NEVER'
             FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = ANY($2)",
            &[&schema, &names],
        )
        .await?;
    let present: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| rows.iter().any(|r| r.get::<_, &str>(0) == *n))
        .collect();
    if present.is_empty() {
        tx.batch_execute(SCHEMA_SQL)
            .await
            .context("creating ward's tables")?;
        return Ok(true);
    }
    if present.len() < names.len() {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !present.contains(n))
            .collect();
        return Err(UsageError(format!(
            "schema {schema} has some of ward's tables ({}) but not {} — drop them, or seed into \
             another schema with --schema",
            present.join(", "),
            missing.join(", ")
        ))
        .into());
    }
    for t in TableId::ALL {
        let table = t.table();
        let cols: Vec<_> = rows
            .iter()
            .filter(|r| r.get::<_, &str>(0) == table.name)
            .collect();
        for c in table.columns {
            let found = cols.iter().find(|r| r.get::<_, &str>(1) == c.name);
            let expected = c.ty.information_schema_name();
            match found {
                None => {
                    return Err(incompatible(
                        schema,
                        table.name,
                        &format!("has no column {}", c.name),
                    ));
                }
                Some(r) if r.get::<_, &str>(2) != expected => {
                    return Err(incompatible(
                        schema,
                        table.name,
                        &format!(
                            "has column {} as {}, ward writes {expected}",
                            c.name,
                            r.get::<_, &str>(2)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = cols.iter().find(|r| {
            !r.get::<_, bool>(3) && !table.columns.iter().any(|c| c.name == r.get::<_, &str>(1))
        }) {
            let col: &str = extra.get(1);
            return Err(incompatible(
                schema,
                table.name,
                &format!("has a NOT NULL column {col} without a default that ward cannot fill"),
            ));
        }
    }
    Ok(false)
}

fn incompatible(schema: &str, table: &str, what: &str) -> anyhow::Error {
    UsageError(format!(
        "table {schema}.{table} is not ward's shape: it {what} — seed into another schema with \
         --schema, or drop ward's tables (see README \"Built-in schema\")"
    ))
    .into()
}

/// Applies `--truncate` / `--append` / refuse. For an append to existing rows,
/// returns the first new patient index and the existing practices.
async fn prepare_existing(
    tx: &Transaction<'_>,
    opts: &LoadOptions,
    created: bool,
) -> Result<Option<(u64, Vec<Practice>)>> {
    if created {
        return Ok(None);
    }
    let all = TableId::ALL.map(|t| t.name()).join(", ");
    match opts.existing {
        Existing::Truncate => {
            tx.batch_execute(&format!("TRUNCATE {all}"))
                .await
                .context("emptying ward's tables (another table may reference them)")?;
            Ok(None)
        }
        Existing::Refuse => {
            let row = tx.query_one("SELECT count(*) FROM patients", &[]).await?;
            let patients: i64 = row.get(0);
            let practices: i64 = tx
                .query_one("SELECT count(*) FROM practices", &[])
                .await?
                .get(0);
            if patients > 0 || practices > 0 {
                return Err(UsageError(format!(
                    "ward's tables in schema {} already hold rows ({patients} patients) — add \
                     --truncate to replace them or --append to add more",
                    opts.schema
                ))
                .into());
            }
            Ok(None)
        }
        Existing::Append => {
            let max_patient: i64 = tx
                .query_one("SELECT coalesce(max(id), 0) FROM patients", &[])
                .await?
                .get(0);
            let rows = tx
                .query(
                    "SELECT p.id, min(d.id), count(d.id), split_part(p.postcode, ' ', 1)
                     FROM practices p LEFT JOIN practitioners d ON d.practice_id = p.id
                     GROUP BY p.id ORDER BY p.id",
                    &[],
                )
                .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let lists = super::lists::Lists::get();
            let practices: Vec<Practice> = rows
                .iter()
                .filter(|r| r.get::<_, i64>(2) > 0)
                .map(|r| Practice {
                    id: r.get(0),
                    // The practice's own district keeps appended patients local to it.
                    district: lists
                        .districts
                        .iter()
                        .position(|d| d.district == r.get::<_, &str>(3)),
                    first_practitioner: r.get(1),
                    practitioners: r.get(2),
                })
                .collect();
            // Practitioner ids of a practice must be consecutive for the roster.
            if practices.is_empty() {
                return Err(anyhow!(
                    "cannot append: the existing practices have no practitioners — use --truncate"
                ));
            }
            Ok(Some((max_patient as u64, practices)))
        }
    }
}

/// `max(id) + 1` of each table, by `TableId` index.
async fn next_ids(tx: &Transaction<'_>) -> Result<Vec<i64>> {
    let select = TableId::ALL
        .iter()
        .map(|t| format!("(SELECT coalesce(max(id), 0) + 1 FROM {})", t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let row = tx.query_one(&format!("SELECT {select}"), &[]).await?;
    Ok((0..TableId::ALL.len()).map(|i| row.get(i)).collect())
}

async fn copy_table(
    tx: &Transaction<'_>,
    world: &Arc<World>,
    plan: &Arc<Plan>,
    pool: &Arc<rayon::ThreadPool>,
    t: TableId,
    progress: &dyn Progress,
) -> Result<u64> {
    let table = t.table();
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.name,
        columns.join(", ")
    );
    let (w, p) = (world.clone(), plan.clone());
    let encode = move |c| pipeline::encode_chunk(&w, &p, t, c, Binary::new(t.table()));
    let copied = copy_chunks(tx, &sql, pool, plan.table(t).chunks.len(), encode, progress)
        .await
        .with_context(|| format!("loading {}", table.name))?;
    let planned = plan.table(t).rows;
    if copied != planned {
        return Err(anyhow!(
            "{}: copied {copied} rows, planned {planned}",
            table.name
        ));
    }
    Ok(copied)
}

/// Streams `chunks` binary-COPY chunks, encoded in parallel by `encode`, into
/// `copy_sql` (a `COPY … FROM STDIN (FORMAT binary)`). Returns the rows copied.
pub(crate) async fn copy_chunks<F>(
    tx: &Transaction<'_>,
    copy_sql: &str,
    pool: &Arc<rayon::ThreadPool>,
    chunks: usize,
    encode: F,
    progress: &dyn Progress,
) -> Result<u64>
where
    F: Fn(usize) -> Result<(Vec<u8>, u64)> + Send + Sync + 'static,
{
    let sink = tx.copy_in::<_, Bytes>(copy_sql).await?;
    futures_util::pin_mut!(sink);
    sink.feed(Bytes::from_static(BINARY_HEADER)).await?;

    let (send, mut recv) =
        tokio::sync::mpsc::channel::<(Vec<u8>, u64)>(pool.current_num_threads() * 2 + 2);
    let pool = pool.clone();
    let producer = tokio::task::spawn_blocking(move || {
        pipeline::ordered(&pool, chunks, encode, |bytes, rows| {
            send.blocking_send((bytes, rows))
                .map_err(|_| anyhow!("the COPY stopped"))
        })
    });
    while let Some((bytes, rows)) = recv.recv().await {
        sink.send(Bytes::from(bytes)).await?;
        progress.advance(rows);
    }
    producer.await??;
    sink.feed(Bytes::from_static(BINARY_TRAILER)).await?;
    Ok(sink.as_mut().finish().await?)
}

/// Moves each identity sequence past the highest id, so the application's
/// own inserts do not collide with seeded rows.
async fn advance_sequences(tx: &Transaction<'_>) -> Result<()> {
    for t in TableId::ALL {
        tx.execute(
            &format!(
                "SELECT setval(s, m) FROM (SELECT pg_get_serial_sequence($1, 'id') AS s,
                        (SELECT max(id) FROM {}) AS m) x WHERE s IS NOT NULL AND m IS NOT NULL",
                t.name()
            ),
            &[&t.name()],
        )
        .await
        .with_context(|| format!("advancing the id sequence of {}", t.name()))?;
    }
    Ok(())
}

/// Appended patients join the existing practices, whose calendars have room
/// for `per_practice` patients each (a patient's slots come from its rank in
/// the practice); beyond that two patients would own the same slots and a
/// clinician would be double-booked, so such an append is refused.
fn check_practice_capacity(
    existing: u64,
    appended: u64,
    practices: u64,
    per_practice: u64,
) -> Result<()> {
    let capacity = practices.saturating_mul(per_practice);
    let total = existing.saturating_add(appended);
    if total > capacity {
        return Err(UsageError(format!(
            "appending {appended} patients would put {total} patients on {practices} practice(s), \
             whose calendars hold {capacity} — seed them all at once instead: ward seed --truncate -n {total}"
        ))
        .into());
    }
    Ok(())
}
