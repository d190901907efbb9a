//! The practice calendar: who works there, which days it opens, and the
//! appointment slots its clinicians offer.
//!
//! Slots are shared out so that no two patients can ever book the same one,
//! without any coordination between the threads generating them: a practice's
//! slots (working day × clinician × slot of the day) are numbered `0..size`,
//! a keyed bijection shuffles the numbers, and the patient of rank `r` in the
//! practice owns the shuffled numbers at positions `r, r + m, r + 2m, …` (`m`
//! the practice's patient capacity). Owners are disjoint by construction, so a
//! clinician is never double-booked and never over a role's daily capacity,
//! whatever order or thread the patients are generated on.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

use super::add_days;
use crate::seed::lists::Lists;
use crate::seed::rng::permute;
use crate::seed::spec::{Spec, Staff};

/// Roles of a practice's `n` clinicians, by position: the team's shares
/// apportioned by largest remainder (ties to the earlier role), so the roster
/// is a function of `n` alone and an appended run rebuilds the same one.
pub(crate) fn roster(staff: &[Staff], n: i64) -> Vec<usize> {
    let n = n.max(1) as u64;
    let total: u64 = staff.iter().map(|s| s.share as u64).sum();
    let mut counts: Vec<u64> = staff.iter().map(|s| n * s.share as u64 / total).collect();
    let mut by_remainder: Vec<usize> = (0..staff.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(n * staff[i].share as u64 % total));
    let short = n - counts.iter().sum::<u64>();
    for &i in by_remainder.iter().take(short as usize) {
        counts[i] += 1;
    }
    let mut roles: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| std::iter::repeat_n(i, c as usize))
        .collect();
    // A practice always has someone who can prescribe.
    if !roles.iter().any(|&r| staff[r].prescriber) {
        roles[0] = staff.iter().position(|s| s.prescriber).unwrap_or(0);
    }
    roles
}

/// Whether a practice is open on `day`.
pub(crate) fn is_working_day(lists: &Lists, day: NaiveDate, saturdays: bool) -> bool {
    match day.weekday() {
        Weekday::Sun => false,
        Weekday::Sat if !saturdays => false,
        _ => !lists.is_bank_holiday(day),
    }
}

/// The first working day on or after `day` (Monday to Friday, no bank holiday).
pub(crate) fn working_day_from(lists: &Lists, mut day: NaiveDate) -> NaiveDate {
    while !is_working_day(lists, day, false) {
        day = add_days(day, 1);
    }
    day
}

/// One bookable slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub at: NaiveDateTime,
    pub minutes: u32,
    /// Position of the clinician in the practice (0-based).
    pub position: usize,
    /// Index into `Spec::practices.staff`.
    pub role: usize,
}

/// A practice's working days in the encounter window and its daily slots.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub days: Vec<NaiveDate>,
    pub roles: Vec<usize>,
    /// First slot of each clinician within a day (prefix sums; one extra at the end).
    starts: Vec<u64>,
    key: u64,
}

impl Calendar {
    pub(crate) fn new(
        spec: &Spec,
        lists: &Lists,
        practitioners: i64,
        saturdays: bool,
        key: u64,
    ) -> Self {
        let staff = &spec.practices.staff;
        let roles = roster(staff, practitioners);
        let mut starts = vec![0];
        for &r in &roles {
            starts.push(starts.last().unwrap() + staff[r].daily_slots as u64);
        }
        let first = add_days(spec.as_of, -(spec.appointments.within_years as i64) * 365);
        let days = first
            .iter_days()
            .take_while(|d| *d <= spec.as_of)
            .filter(|d| is_working_day(lists, *d, saturdays))
            .collect();
        Calendar {
            days,
            roles,
            starts,
            key,
        }
    }

    fn per_day(&self) -> u64 {
        *self.starts.last().unwrap()
    }

    pub(crate) fn size(&self) -> u64 {
        self.days.len() as u64 * self.per_day()
    }

    /// Positions of the clinicians who may prescribe.
    pub(crate) fn prescribers<'a>(
        &'a self,
        staff: &'a [Staff],
    ) -> impl Iterator<Item = usize> + 'a {
        (0..self.roles.len()).filter(|&i| staff[self.roles[i]].prescriber)
    }

    pub(crate) fn slot(&self, spec: &Spec, s: u64) -> Slot {
        let per_day = self.per_day();
        let day = self.days[(s / per_day) as usize];
        let within = s % per_day;
        let position = self.starts.partition_point(|&x| x <= within) - 1;
        let role = self.roles[position];
        let staff = &spec.practices.staff[role];
        let j = (within - self.starts[position]) as u32;
        let morning = staff.daily_slots.div_ceil(2);
        let (session, k) = if j < morning {
            (spec.appointments.morning, j)
        } else {
            (spec.appointments.afternoon, j - morning)
        };
        let minute = session.num_seconds_from_midnight() / 60 + k * staff.slot_minutes;
        let at = day.and_time(NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap());
        Slot {
            at,
            minutes: staff.slot_minutes,
            position,
            role,
        }
    }

    /// The slots the patient of `rank` owns on days in `from..=to`, in time order.
    pub(crate) fn owned(
        &self,
        rank: u64,
        modulus: u64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<u64> {
        let size = self.size();
        let per_day = self.per_day();
        let lo = self.days.partition_point(|d| *d < from) as u64 * per_day;
        let hi = self.days.partition_point(|d| *d <= to) as u64 * per_day;
        let rank = rank % modulus;
        let mut out: Vec<u64> = (0..)
            .map(|j| rank + j * modulus)
            .take_while(|&x| x < size)
            .map(|x| permute(self.key, x, size))
            .filter(|s| (lo..hi).contains(s))
            .collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_apportions_the_team_and_always_has_a_prescriber() {
        let spec = Spec::builtin().unwrap();
        let staff = &spec.practices.staff;
        for n in 1..30 {
            let r = roster(staff, n);
            assert_eq!(r.len() as i64, n);
            assert!(r.iter().any(|&i| staff[i].prescriber), "{n}");
        }
    }

    #[test]
    fn owners_never_share_a_slot_and_days_are_working_days() {
        let spec = Spec::builtin().unwrap();
        let lists = Lists::get();
        let cal = Calendar::new(&spec, lists, 15, false, 7);
        let mut seen = std::collections::HashSet::new();
        let (from, to) = (cal.days[0], *cal.days.last().unwrap());
        for rank in 0..spec.practices.patients_per_practice {
            for s in cal.owned(rank, spec.practices.patients_per_practice, from, to) {
                assert!(seen.insert(s), "slot {s} owned twice");
            }
        }
        assert!(cal.days.iter().all(|d| is_working_day(lists, *d, false)));
        assert!(
            !cal.days
                .contains(&NaiveDate::from_ymd_opt(2025, 12, 25).unwrap())
        );
    }

    #[test]
    fn a_practice_that_opts_in_opens_on_saturdays_but_never_sundays_or_bank_holidays() {
        let spec = Spec::builtin().unwrap();
        let lists = Lists::get();
        let weekdays = Calendar::new(&spec, lists, 10, false, 1);
        let saturdays = Calendar::new(&spec, lists, 10, true, 1);
        assert!(saturdays.days.len() > weekdays.days.len() + 90);
        assert!(saturdays.days.iter().any(|d| d.weekday() == Weekday::Sat));
        assert!(
            saturdays
                .days
                .iter()
                .all(|d| d.weekday() != Weekday::Sun && !lists.is_bank_holiday(*d))
        );
    }

    #[test]
    fn slots_of_a_clinician_never_overlap_and_stay_within_capacity() {
        let spec = Spec::builtin().unwrap();
        let cal = Calendar::new(&spec, Lists::get(), 12, false, 3);
        let per_day = cal.size() / cal.days.len() as u64;
        let mut by_clinician: std::collections::HashMap<usize, Vec<Slot>> = Default::default();
        for s in 0..per_day {
            let slot = cal.slot(&spec, s);
            by_clinician.entry(slot.position).or_default().push(slot);
        }
        for (position, mut slots) in by_clinician {
            let role = &spec.practices.staff[cal.roles[position]];
            assert_eq!(slots.len() as u32, role.daily_slots);
            slots.sort_by_key(|s| s.at);
            for w in slots.windows(2) {
                assert!(w[0].at + chrono::Duration::minutes(w[0].minutes as i64) <= w[1].at);
            }
        }
    }
}
