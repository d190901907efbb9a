//! Grandfather-father-son retention for `ward snapshot prune`: pure selection
//! by `created_at`, so it can be tested without a store.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    pub keep_last: usize,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
}

/// One snapshot's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Decision {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub keep: bool,
    /// Why it is kept (empty when it goes).
    pub reasons: Vec<String>,
}

/// Decides which snapshots to keep. The newest is always kept.
pub(crate) fn select(snapshots: &[(String, DateTime<Utc>)], policy: Policy) -> Vec<Decision> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = snapshots.iter().collect();
    // Newest first; ties broken by name for determinism.
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut out: Vec<Decision> = sorted
        .iter()
        .map(|(n, t)| Decision {
            name: n.clone(),
            created_at: *t,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    out[0].reasons.push("newest".into());
    for (i, d) in out.iter_mut().enumerate().take(policy.keep_last) {
        d.reasons.push(format!("last {}", i + 1));
    }
    bucket(&mut out, policy.keep_daily, "daily", |t| {
        t.format("%Y-%m-%d").to_string()
    });
    bucket(&mut out, policy.keep_weekly, "weekly", |t| {
        let w = t.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    });
    bucket(&mut out, policy.keep_monthly, "monthly", |t| {
        t.format("%Y-%m").to_string()
    });
    for d in &mut out {
        d.keep = !d.reasons.is_empty();
    }
    out
}

/// Keeps the newest snapshot in each of the `n` most recent periods.
fn bucket(out: &mut [Decision], n: usize, label: &str, period: impl Fn(&DateTime<Utc>) -> String) {
    let mut seen: Vec<String> = Vec::new();
    for d in out.iter_mut() {
        if seen.len() >= n {
            break;
        }
        let p = period(&d.created_at);
        if !seen.contains(&p) {
            d.reasons.push(format!("{label} {p}"));
            seen.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn kept(ds: &[Decision]) -> Vec<&str> {
        let mut v: Vec<&str> = ds
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.name.as_str())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_kept_but_the_newest_with_an_empty_policy() {
        let s = vec![
            ("a".to_string(), at(2026, 1, 1, 0)),
            ("b".to_string(), at(2026, 1, 2, 0)),
        ];
        let d = select(&s, Policy::default());
        assert_eq!(kept(&d), vec!["b"]);
        assert_eq!(d[0].reasons, vec!["newest"]);
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let s: Vec<_> = (1..=5)
            .map(|i| (format!("s{i}"), at(2026, 1, i, 0)))
            .collect();
        let d = select(
            &s,
            Policy {
                keep_last: 2,
                ..Default::default()
            },
        );
        assert_eq!(kept(&d), vec!["s4", "s5"]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let s = vec![
            ("d1a".to_string(), at(2026, 3, 1, 1)),
            ("d1b".to_string(), at(2026, 3, 1, 20)),
            ("d2a".to_string(), at(2026, 3, 2, 5)),
            ("d2b".to_string(), at(2026, 3, 2, 6)),
            ("d3".to_string(), at(2026, 3, 3, 6)),
        ];
        let d = select(
            &s,
            Policy {
                keep_daily: 2,
                ..Default::default()
            },
        );
        assert_eq!(kept(&d), vec!["d2b", "d3"]);
        let d = select(
            &s,
            Policy {
                keep_daily: 10,
                ..Default::default()
            },
        );
        assert_eq!(kept(&d), vec!["d1b", "d2b", "d3"]);
    }

    #[test]
    fn weekly_and_monthly_combine_with_reasons() {
        // Two months of one snapshot a day.
        let s: Vec<_> = (0..60)
            .map(|i| {
                let t = at(2026, 1, 1, 12) + chrono::Duration::days(i);
                (format!("s{i:02}"), t)
            })
            .collect();
        let d = select(
            &s,
            Policy {
                keep_last: 1,
                keep_daily: 3,
                keep_weekly: 2,
                keep_monthly: 3,
            },
        );
        let k = kept(&d);
        // newest = s59 (2026-03-01): last, daily, weekly, monthly 2026-03
        // daily: s59, s58, s57; weekly: s59 (W09), s52 (Sun 2026-02-22, W08)
        // monthly: s59 (03), s58 (2026-02-28), s30 (2026-01-31)
        assert_eq!(k, vec!["s30", "s52", "s57", "s58", "s59"]);
        let newest = d.iter().find(|x| x.name == "s59").unwrap();
        assert!(newest.reasons.iter().any(|r| r.starts_with("monthly")));
        assert!(d.iter().filter(|x| !x.keep).all(|x| x.reasons.is_empty()));
    }

    #[test]
    fn the_newest_survives_even_when_ties() {
        let t = at(2026, 5, 5, 5);
        let s = vec![("a".to_string(), t), ("b".to_string(), t)];
        let d = select(&s, Policy::default());
        assert_eq!(kept(&d), vec!["b"]);
    }
}
