//! Column types from `pg_type`: domains resolved to their base type (with
//! their CHECKs and NOT NULL), enums with their labels, arrays with their
//! element type, and what ward can generate for each.

use std::collections::HashMap;

use anyhow::{Context, Result};
use tokio_postgres::GenericClient;

use super::PgType;

pub(super) struct TypeInfo {
    name: String,
    kind: u8,
    elem: u32,
    base: u32,
    base_typmod: i32,
    domain_checks: Vec<String>,
}

pub(super) async fn read_types(client: &impl GenericClient) -> Result<HashMap<u32, TypeInfo>> {
    let rows = client
        .query(
            "SELECT t.oid, t.typname::text, t.typtype::text, t.typelem, t.typbasetype, t.typtypmod,
                    coalesce((SELECT array_agg(pg_get_constraintdef(c.oid) ORDER BY c.conname)
                              FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'),
                             '{}'),
                    t.typnotnull
             FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace",
            &[],
        )
        .await
        .context("reading types from pg_catalog")?;
    let mut map = HashMap::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let mut checks: Vec<String> = r.get(6);
        if r.get::<_, bool>(7) {
            checks.push("NOT NULL".into());
        }
        map.insert(
            oid,
            TypeInfo {
                name: r.get(1),
                kind: r.get::<_, &str>(2).as_bytes()[0],
                elem: r.get(3),
                base: r.get(4),
                base_typmod: r.get(5),
                domain_checks: checks,
            },
        );
    }
    let labels = client
        .query(
            "SELECT enumtypid, enumlabel::text FROM pg_enum ORDER BY enumtypid, enumsortorder",
            &[],
        )
        .await?;
    for r in labels {
        if let Some(t) = map.get_mut(&r.get::<_, u32>(0)) {
            t.domain_checks
                .push(format!("label:{}", r.get::<_, String>(1)));
        }
    }
    Ok(map)
}

/// Resolves a type (through domains) to a `PgType`, with the domain checks
/// met on the way and whether a domain is NOT NULL.
pub(super) fn resolve(
    types: &HashMap<u32, TypeInfo>,
    oid: u32,
    typmod: i32,
) -> (PgType, Vec<String>, bool) {
    let Some(t) = types.get(&oid) else {
        return (PgType::Other(format!("oid {oid}")), vec![], false);
    };
    if t.kind == b'd' {
        let typmod = if t.base_typmod >= 0 {
            t.base_typmod
        } else {
            typmod
        };
        let (ty, mut checks, not_null) = resolve(types, t.base, typmod);
        let own: Vec<String> = t
            .domain_checks
            .iter()
            .filter(|c| *c != "NOT NULL")
            .cloned()
            .collect();
        checks.extend(own);
        let nn = not_null || t.domain_checks.iter().any(|c| c == "NOT NULL");
        return (ty, checks, nn);
    }
    if t.kind == b'e' {
        let labels = t
            .domain_checks
            .iter()
            .filter_map(|c| c.strip_prefix("label:").map(str::to_string))
            .collect();
        return (PgType::Enum(labels), vec![], false);
    }
    let len = (typmod >= 4).then(|| (typmod - 4) as u32);
    let ty = match t.name.as_str() {
        "bool" => PgType::Bool,
        "int2" => PgType::Int2,
        "int4" => PgType::Int4,
        "int8" => PgType::Int8,
        "float4" => PgType::Float4,
        "float8" => PgType::Float8,
        "numeric" => PgType::Numeric(len.map(|m| (m >> 16, m & 0xffff))),
        "text" | "citext" | "name" => PgType::Text {
            max_len: (t.name == "name").then_some(63),
            fixed: false,
        },
        "varchar" => PgType::Text {
            max_len: len,
            fixed: false,
        },
        "bpchar" => PgType::Text {
            max_len: Some(len.unwrap_or(1)),
            fixed: true,
        },
        "date" => PgType::Date,
        "time" => PgType::Time,
        "timestamp" => PgType::Timestamp,
        "timestamptz" => PgType::TimestampTz,
        "interval" => PgType::Interval,
        "uuid" => PgType::Uuid,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "bytea" => PgType::Bytea,
        _ if t.elem != 0 && t.name.starts_with('_') => {
            let (elem, _, _) = resolve(types, t.elem, typmod);
            PgType::Array(Box::new(elem), t.elem)
        }
        other => PgType::Other(other.to_string()),
    };
    (ty, vec![], false)
}
