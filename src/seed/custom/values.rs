//! Generated values and their Postgres binary COPY encoding, per column type.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::seed::encode::{self, numeric_body};

use super::schema::PgType;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// mantissa / 10^scale
    Numeric(i64, u16),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    Uuid([u8; 16]),
    /// JSON text
    Json(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as text, for templates and text columns.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Numeric(m, s) => decimal(*m, *s),
            Value::Text(t) | Value::Json(t) => t.clone(),
            Value::Bytes(b) => hex::encode(b),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Time(t) => t.format("%H:%M:%S").to_string(),
            Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            Value::Interval {
                months,
                days,
                micros,
            } => {
                format!("{months} mons {days} days {} secs", micros / 1_000_000)
            }
            Value::Uuid(u) => {
                let h = hex::encode(u);
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(|v| v.to_text()).collect();
                format!("{{{}}}", inner.join(","))
            }
        }
    }
}

/// A `values = [...]` entry read as a value for a column of type `ty`.
pub(crate) fn parse_as(s: &str, ty: &PgType) -> Result<Value, String> {
    let bad = || format!("{s:?} is not a valid value for this column");
    Ok(match ty {
        PgType::Array(elem, _) => parse_as(s, elem)?,
        PgType::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Value::Bool(true),
            "false" | "f" | "no" | "0" => Value::Bool(false),
            _ => return Err(bad()),
        },
        t if t.is_integer() => Value::Int(s.parse().map_err(|_| bad())?),
        PgType::Float4 | PgType::Float8 => Value::Float(s.parse().map_err(|_| bad())?),
        PgType::Numeric(_) => {
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let m: i64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
            Value::Numeric(m, frac.len() as u16)
        }
        PgType::Date => Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?),
        PgType::Timestamp | PgType::TimestampTz => Value::Timestamp(
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map_err(|_| bad())?,
        ),
        PgType::Uuid => {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            let b = hex::decode(hex).map_err(|_| bad())?;
            Value::Uuid(b.try_into().map_err(|_| bad())?)
        }
        PgType::Json | PgType::Jsonb => {
            serde_json::from_str::<serde_json::Value>(s).map_err(|_| bad())?;
            Value::Json(s.to_string())
        }
        _ => Value::Text(s.to_string()),
    })
}

fn decimal(m: i64, scale: u16) -> String {
    let mut out = Vec::new();
    encode::decimal(&mut out, m, scale);
    String::from_utf8(out).expect("digits are ASCII")
}

fn days(d: NaiveDate) -> i32 {
    encode::pg_days(d)
}

fn micros_of_day(t: NaiveTime) -> i64 {
    t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1000) as i64
}

/// Appends one field (length + bytes, or -1 for NULL) for a column of type `ty`.
pub(crate) fn encode(buf: &mut Vec<u8>, v: &Value, ty: &PgType) -> Result<(), String> {
    if matches!(v, Value::Null) {
        buf.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    body(buf, v, ty)?;
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(*b as i64),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Numeric(m, s) => Some(*m as f64 / 10f64.powi(*s as i32)),
        _ => None,
    }
}

fn body(buf: &mut Vec<u8>, v: &Value, ty: &PgType) -> Result<(), String> {
    let mismatch = || format!("cannot write {v:?} into a column of type {ty:?}");
    match ty {
        PgType::Bool => match v {
            Value::Bool(b) => buf.push(*b as u8),
            _ => return Err(mismatch()),
        },
        PgType::Int2 | PgType::Int4 | PgType::Int8 => {
            let i = int_of(v).ok_or_else(mismatch)?;
            let (lo, hi) = ty.int_range().unwrap();
            if i < lo || i > hi {
                return Err(format!("{i} does not fit in {ty:?}"));
            }
            match ty {
                PgType::Int2 => buf.extend_from_slice(&(i as i16).to_be_bytes()),
                PgType::Int4 => buf.extend_from_slice(&(i as i32).to_be_bytes()),
                _ => buf.extend_from_slice(&i.to_be_bytes()),
            }
        }
        PgType::Float4 => {
            buf.extend_from_slice(&(float_of(v).ok_or_else(mismatch)? as f32).to_be_bytes())
        }
        PgType::Float8 => buf.extend_from_slice(&float_of(v).ok_or_else(mismatch)?.to_be_bytes()),
        PgType::Numeric(_) => {
            let (m, s) = match v {
                Value::Numeric(m, s) => (*m, *s),
                Value::Int(i) => (*i, 0),
                Value::Float(f) => ((f * 1e6).round() as i64, 6),
                _ => return Err(mismatch()),
            };
            numeric_body(buf, m, s);
        }
        PgType::Text { .. } | PgType::Enum(_) => buf.extend_from_slice(v.to_text().as_bytes()),
        PgType::Date => match v {
            Value::Date(d) => buf.extend_from_slice(&days(*d).to_be_bytes()),
            Value::Timestamp(t) => buf.extend_from_slice(&days(t.date()).to_be_bytes()),
            _ => return Err(mismatch()),
        },
        PgType::Time => match v {
            Value::Time(t) => buf.extend_from_slice(&micros_of_day(*t).to_be_bytes()),
            _ => return Err(mismatch()),
        },
        PgType::Timestamp | PgType::TimestampTz => {
            let t = match v {
                Value::Timestamp(t) => *t,
                Value::Date(d) => d.and_time(NaiveTime::MIN),
                _ => return Err(mismatch()),
            };
            let us = days(t.date()) as i64 * 86_400_000_000 + micros_of_day(t.time());
            buf.extend_from_slice(&us.to_be_bytes());
        }
        PgType::Interval => match v {
            Value::Interval {
                months,
                days,
                micros,
            } => {
                buf.extend_from_slice(&micros.to_be_bytes());
                buf.extend_from_slice(&days.to_be_bytes());
                buf.extend_from_slice(&months.to_be_bytes());
            }
            _ => return Err(mismatch()),
        },
        PgType::Uuid => match v {
            Value::Uuid(u) => buf.extend_from_slice(u),
            _ => return Err(mismatch()),
        },
        PgType::Json => buf.extend_from_slice(json_text(v).as_bytes()),
        PgType::Jsonb => {
            buf.push(1);
            buf.extend_from_slice(json_text(v).as_bytes());
        }
        PgType::Bytea => match v {
            Value::Bytes(b) => buf.extend_from_slice(b),
            other => buf.extend_from_slice(other.to_text().as_bytes()),
        },
        PgType::Array(elem, elem_oid) => {
            let items: Vec<Value> = match v {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            let has_null = items.iter().any(|i| matches!(i, Value::Null));
            buf.extend_from_slice(&1i32.to_be_bytes());
            buf.extend_from_slice(&(has_null as i32).to_be_bytes());
            buf.extend_from_slice(&elem_oid.to_be_bytes());
            buf.extend_from_slice(&(items.len() as i32).to_be_bytes());
            buf.extend_from_slice(&1i32.to_be_bytes());
            for item in &items {
                encode(buf, item, elem)?;
            }
        }
        PgType::Other(name) => return Err(format!("ward cannot write values of type {name}")),
    }
    Ok(())
}

fn json_text(v: &Value) -> String {
    match v {
        Value::Json(j) => j.clone(),
        Value::Int(_) | Value::Float(_) | Value::Numeric(..) | Value::Bool(_) => v.to_text(),
        other => serde_json::to_string(&other.to_text()).expect("strings serialise"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_form() {
        let v = Value::Uuid([0x12; 16]);
        assert_eq!(v.to_text(), "12121212-1212-1212-1212-121212121212");
    }

    #[test]
    fn null_is_minus_one() {
        let mut b = Vec::new();
        encode(&mut b, &Value::Null, &PgType::Int4).unwrap();
        assert_eq!(b, (-1i32).to_be_bytes());
    }

    #[test]
    fn integers_are_range_checked() {
        let mut b = Vec::new();
        assert!(encode(&mut b, &Value::Int(70_000), &PgType::Int2).is_err());
    }
}
