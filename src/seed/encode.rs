//! Row encoders: the generators write each value once, through this trait,
//! into Postgres binary COPY, CSV or JSON lines.
//!
//! Encoding happens in the parallel generator threads, straight into byte
//! buffers, so the single COPY connection only forwards bytes. The binary
//! format is the one `tokio_postgres::binary_copy::BinaryCopyInWriter`
//! produces (PGCOPY header, per-row field count, length-prefixed big-endian
//! fields); we write it ourselves to avoid a `ToSql` trait object per field on
//! the one thread that talks to the server.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::model::Table;

/// Days from 0001-01-01 (CE day 1) to the Postgres epoch 2000-01-01.
const PG_EPOCH_CE_DAYS: i32 = 730_120;

pub(crate) trait Encoder {
    fn begin_row(&mut self);
    fn end_row(&mut self);
    fn int(&mut self, v: i64);
    fn int4(&mut self, v: i32);
    fn text(&mut self, v: &str);
    fn date(&mut self, v: NaiveDate);
    fn timestamp(&mut self, v: NaiveDateTime);
    /// A numeric `mantissa / 10^scale`.
    fn numeric(&mut self, mantissa: i64, scale: u16);
    fn null(&mut self);
    /// The bytes written since the last call.
    fn take(&mut self) -> Vec<u8>;

    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }
    fn opt_date(&mut self, v: Option<NaiveDate>) {
        match v {
            Some(d) => self.date(d),
            None => self.null(),
        }
    }
}

/// The 19-byte header that starts a binary COPY stream.
pub(crate) const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer that ends it (a field count of -1).
pub(crate) const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

pub(crate) struct Binary {
    buf: Vec<u8>,
    ncols: i16,
}

impl Binary {
    pub(crate) fn new(table: &Table) -> Self {
        Binary {
            buf: Vec::with_capacity(1 << 16),
            ncols: table.columns.len() as i16,
        }
    }
    fn field(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }
}

pub(crate) fn pg_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - PG_EPOCH_CE_DAYS
}

fn pg_micros(t: NaiveDateTime) -> i64 {
    pg_days(t.date()) as i64 * 86_400_000_000
        + t.time().num_seconds_from_midnight() as i64 * 1_000_000
        + (t.time().nanosecond() / 1000) as i64
}

impl Encoder for Binary {
    fn begin_row(&mut self) {
        self.buf.extend_from_slice(&self.ncols.to_be_bytes());
    }
    fn end_row(&mut self) {}
    fn int(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }
    fn int4(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }
    fn text(&mut self, v: &str) {
        self.field(v.as_bytes());
    }
    fn date(&mut self, v: NaiveDate) {
        self.field(&pg_days(v).to_be_bytes());
    }
    fn timestamp(&mut self, v: NaiveDateTime) {
        self.field(&pg_micros(v).to_be_bytes());
    }
    fn numeric(&mut self, mantissa: i64, scale: u16) {
        let mut body = Vec::with_capacity(16);
        numeric_body(&mut body, mantissa, scale);
        self.field(&body);
    }
    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// The body of a binary Postgres numeric `mantissa / 10^scale`: base-10000
/// digits, most significant first, `weight` = exponent of the first digit.
pub(crate) fn numeric_body(out: &mut Vec<u8>, mantissa: i64, scale: u16) {
    // Pad the fraction to whole base-10000 groups.
    let frac_groups = scale.div_ceil(4);
    let mut a = mantissa.unsigned_abs() as u128 * 10u128.pow((frac_groups * 4 - scale) as u32);
    let mut groups = Vec::new();
    while a > 0 {
        groups.push((a % 10_000) as i16);
        a /= 10_000;
    }
    let weight = groups.len() as i16 - frac_groups as i16 - 1;
    let skip = groups.iter().take_while(|&&g| g == 0).count();
    let digits: Vec<i16> = groups[skip..].iter().rev().copied().collect();
    let sign: u16 = if mantissa < 0 { 0x4000 } else { 0 };
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&(if digits.is_empty() { 0 } else { weight }).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// Formats `mantissa / 10^scale` with exactly `scale` decimals.
pub(crate) fn decimal(out: &mut Vec<u8>, mantissa: i64, scale: u16) {
    use std::io::Write;
    let p = 10i64.pow(scale as u32);
    let sign = if mantissa < 0 { "-" } else { "" };
    let a = mantissa.unsigned_abs() as i64;
    if scale == 0 {
        let _ = write!(out, "{sign}{a}");
    } else {
        let _ = write!(out, "{sign}{}.{:0w$}", a / p, a % p, w = scale as usize);
    }
}

fn write_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = out.write_fmt(args);
}

/// RFC 4180 CSV, as Postgres `COPY … (FORMAT csv, HEADER)` reads it: NULL is an
/// empty unquoted field, an empty string is `""`.
pub(crate) struct Csv {
    buf: Vec<u8>,
    first: bool,
}

impl Csv {
    pub(crate) fn new() -> Self {
        Csv {
            buf: Vec::with_capacity(1 << 16),
            first: true,
        }
    }
    pub(crate) fn header(table: &Table) -> Vec<u8> {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        format!("{}\n", names.join(",")).into_bytes()
    }
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }
}

impl Default for Csv {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder for Csv {
    fn begin_row(&mut self) {
        self.first = true;
    }
    fn end_row(&mut self) {
        self.buf.push(b'\n');
    }
    fn int(&mut self, v: i64) {
        self.sep();
        write_fmt(&mut self.buf, format_args!("{v}"));
    }
    fn int4(&mut self, v: i32) {
        self.int(v as i64);
    }
    fn text(&mut self, v: &str) {
        self.sep();
        if v.is_empty() || v.contains([',', '"', '\n', '\r']) {
            self.buf.push(b'"');
            self.buf
                .extend_from_slice(v.replace('"', "\"\"").as_bytes());
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(v.as_bytes());
        }
    }
    fn date(&mut self, v: NaiveDate) {
        self.sep();
        write_fmt(&mut self.buf, format_args!("{}", v.format("%Y-%m-%d")));
    }
    fn timestamp(&mut self, v: NaiveDateTime) {
        self.sep();
        write_fmt(
            &mut self.buf,
            format_args!("{}", v.format("%Y-%m-%d %H:%M:%S")),
        );
    }
    fn numeric(&mut self, mantissa: i64, scale: u16) {
        self.sep();
        decimal(&mut self.buf, mantissa, scale);
    }
    fn null(&mut self) {
        self.sep();
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// One JSON object per row, keys in column order.
pub(crate) struct Jsonl {
    buf: Vec<u8>,
    names: Vec<&'static str>,
    col: usize,
}

impl Jsonl {
    pub(crate) fn new(table: &Table) -> Self {
        Jsonl {
            buf: Vec::with_capacity(1 << 16),
            names: table.columns.iter().map(|c| c.name).collect(),
            col: 0,
        }
    }
    fn key(&mut self) {
        let sep = if self.col == 0 { "{" } else { "," };
        let name = self.names[self.col];
        write_fmt(&mut self.buf, format_args!("{sep}\"{name}\":"));
        self.col += 1;
    }
}

impl Encoder for Jsonl {
    fn begin_row(&mut self) {
        self.col = 0;
    }
    fn end_row(&mut self) {
        self.buf.extend_from_slice(b"}\n");
    }
    fn int(&mut self, v: i64) {
        self.key();
        write_fmt(&mut self.buf, format_args!("{v}"));
    }
    fn int4(&mut self, v: i32) {
        self.int(v as i64);
    }
    fn text(&mut self, v: &str) {
        self.key();
        // serde_json escapes exactly as JSON requires.
        let quoted = serde_json::to_string(v).expect("a str always serialises");
        self.buf.extend_from_slice(quoted.as_bytes());
    }
    fn date(&mut self, v: NaiveDate) {
        self.key();
        write_fmt(&mut self.buf, format_args!("\"{}\"", v.format("%Y-%m-%d")));
    }
    fn timestamp(&mut self, v: NaiveDateTime) {
        self.key();
        write_fmt(
            &mut self.buf,
            format_args!("\"{}\"", v.format("%Y-%m-%dT%H:%M:%S")),
        );
    }
    fn numeric(&mut self, mantissa: i64, scale: u16) {
        self.key();
        decimal(&mut self.buf, mantissa, scale);
    }
    fn null(&mut self) {
        self.key();
        self.buf.extend_from_slice(b"null");
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(m: i64, scale: u16) -> Vec<u8> {
        let t = Table {
            name: "t",
            columns: &[],
        };
        let mut b = Binary::new(&t);
        b.numeric(m, scale);
        b.take()[4..].to_vec()
    }

    #[test]
    fn numeric_matches_postgres_layout() {
        // 123.4: digits [123, 4000], weight 0, dscale 1.
        assert_eq!(
            numeric_bytes(1234, 1),
            vec![0, 2, 0, 0, 0, 0, 0, 1, 0, 123, 15, 160]
        );
        // 0.05: digits [500], weight -1, dscale 2.
        assert_eq!(
            numeric_bytes(5, 2),
            vec![0, 1, 255, 255, 0, 0, 0, 2, 1, 244]
        );
        // -20000: digits [2], weight 1, negative.
        assert_eq!(
            numeric_bytes(-20000, 0),
            vec![0, 1, 0, 1, 0x40, 0, 0, 0, 0, 2]
        );
        // zero: no digits.
        assert_eq!(numeric_bytes(0, 1), vec![0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut c = Csv::new();
        c.begin_row();
        c.text("O'Brien");
        c.text("a,b");
        c.text("");
        c.null();
        c.numeric(-5, 1);
        c.end_row();
        assert_eq!(
            String::from_utf8(c.take()).unwrap(),
            "O'Brien,\"a,b\",\"\",,-0.5\n"
        );
    }

    #[test]
    fn dates_count_from_the_postgres_epoch() {
        assert_eq!(pg_days(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()), 0);
        assert_eq!(pg_days(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()), -1);
    }
}
