//! Every rule `ward check` reports, in one place.
//!
//! A rule's name is a contract: users write it in `-- ward:ignore RULE`, in
//! accept files and in CI filters on SARIF `ruleId`s. Keeping name, level,
//! whether it may be ignored and its help line together means a new rule is
//! one variant here, and no list elsewhere can forget it.

use serde::Serialize;

use super::report::Level;

/// A check rule. Serialises (JSON, SARIF) as its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Rule {
    MigrationError,
    RowsLost,
    DroppedData,
    ValuesChanged,
    InvalidIndex,
    SequenceBehind,
    NotValidConstraint,
    DirtyHistory,
    HistoryMismatch,
    DownMigration,
    SeedBroken,
    BlockingLock,
    TimezoneDependent,
    DroppedEmpty,
    OutOfOrder,
    DefaultFilled,
    MetadataLock,
    RowsAdded,
    ValuesConverted,
    DroppedGenerated,
    StaleAccept,
    HistoryNotRecorded,
}

/// Why a rule cannot be ignored or accepted, when it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotIgnorable {
    /// The migration does not run or the history is broken: accepting that
    /// would pass a change that cannot deploy.
    Blocks,
    /// A finding about ward's own inputs, not about the migration.
    AboutWard,
}

impl Rule {
    /// Every rule, in the order the help lists them (most severe first).
    pub(crate) const ALL: [Rule; 22] = [
        Rule::MigrationError,
        Rule::RowsLost,
        Rule::DroppedData,
        Rule::ValuesChanged,
        Rule::InvalidIndex,
        Rule::SequenceBehind,
        Rule::NotValidConstraint,
        Rule::DirtyHistory,
        Rule::HistoryMismatch,
        Rule::DownMigration,
        Rule::SeedBroken,
        Rule::BlockingLock,
        Rule::TimezoneDependent,
        Rule::DroppedEmpty,
        Rule::OutOfOrder,
        Rule::DefaultFilled,
        Rule::MetadataLock,
        Rule::RowsAdded,
        Rule::ValuesConverted,
        Rule::DroppedGenerated,
        Rule::StaleAccept,
        Rule::HistoryNotRecorded,
    ];

    /// The name users write (`ward:ignore`, accept files, SARIF `ruleId`).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Rule::MigrationError => "migration-error",
            Rule::RowsLost => "rows-lost",
            Rule::DroppedData => "dropped-data",
            Rule::ValuesChanged => "values-changed",
            Rule::InvalidIndex => "invalid-index",
            Rule::SequenceBehind => "sequence-behind",
            Rule::NotValidConstraint => "not-valid-constraint",
            Rule::DirtyHistory => "dirty-history",
            Rule::HistoryMismatch => "history-mismatch",
            Rule::DownMigration => "down-migration",
            Rule::SeedBroken => "seed-broken",
            Rule::BlockingLock => "blocking-lock",
            Rule::TimezoneDependent => "timezone-dependent",
            Rule::DroppedEmpty => "dropped-empty",
            Rule::OutOfOrder => "out-of-order",
            Rule::DefaultFilled => "default-filled",
            Rule::MetadataLock => "metadata-lock",
            Rule::RowsAdded => "rows-added",
            Rule::ValuesConverted => "values-converted",
            Rule::DroppedGenerated => "dropped-generated",
            Rule::StaleAccept => "stale-accept",
            Rule::HistoryNotRecorded => "history-not-recorded",
        }
    }

    /// The most severe level the rule reports at (some findings of a rule
    /// are milder, e.g. an invalid index that was already there is a WARN).
    pub(crate) const fn level(self) -> Level {
        match self {
            Rule::MigrationError
            | Rule::RowsLost
            | Rule::DroppedData
            | Rule::ValuesChanged
            | Rule::InvalidIndex
            | Rule::SequenceBehind
            | Rule::NotValidConstraint
            | Rule::DirtyHistory
            | Rule::HistoryMismatch
            | Rule::DownMigration
            | Rule::SeedBroken => Level::Fail,
            Rule::BlockingLock
            | Rule::TimezoneDependent
            | Rule::DroppedEmpty
            | Rule::OutOfOrder
            | Rule::StaleAccept => Level::Warn,
            Rule::DefaultFilled
            | Rule::MetadataLock
            | Rule::RowsAdded
            | Rule::ValuesConverted
            | Rule::DroppedGenerated
            | Rule::HistoryNotRecorded => Level::Info,
        }
    }

    /// `Ok` when a `ward:ignore` comment or an accept entry may name the rule.
    pub(crate) const fn ignorable(self) -> Result<(), NotIgnorable> {
        match self {
            Rule::MigrationError | Rule::DirtyHistory | Rule::HistoryMismatch => {
                Err(NotIgnorable::Blocks)
            }
            Rule::StaleAccept | Rule::HistoryNotRecorded => Err(NotIgnorable::AboutWard),
            _ => Ok(()),
        }
    }

    /// One line of help: when the rule fires.
    pub(crate) const fn help(self) -> &'static str {
        match self {
            Rule::MigrationError => {
                "a migration errors on the data (with the SQLSTATE and the offending rows)"
            }
            Rule::RowsLost => "rows disappeared, also in tables the migration never names",
            Rule::DroppedData => "a dropped table or column held data",
            Rule::ValuesChanged => "values in a surviving column changed",
            Rule::InvalidIndex => "an INVALID index is left behind",
            Rule::SequenceBehind => "an id sequence is behind max(id): the next inserts collide",
            Rule::NotValidConstraint => "a NOT VALID constraint would not validate",
            Rule::DirtyHistory => "the history table records a failed or dirty migration",
            Rule::HistoryMismatch => "an applied migration file is missing or was edited",
            Rule::DownMigration => "up → down does not give back the schema and data",
            Rule::SeedBroken => {
                "the seed spec (or built-in model) no longer seeds the migrated schema"
            }
            Rule::BlockingLock => {
                "a lock at or above SHARE on a populated table while rewriting, scanning or indexing it"
            }
            Rule::TimezoneDependent => {
                "the migrations give different data under another session TimeZone"
            }
            Rule::DroppedEmpty => {
                "a dropped table or column was empty here (it may not be in production)"
            }
            Rule::OutOfOrder => "a pending file is older than applied ones",
            Rule::DefaultFilled => "rows received a default",
            Rule::MetadataLock => "a brief ACCESS EXCLUSIVE catalog-only lock",
            Rule::RowsAdded => "rows were added",
            Rule::ValuesConverted => "a type change mapped each old value to its own new value",
            Rule::DroppedGenerated => "a dropped GENERATED column (its values are computed)",
            Rule::StaleAccept => "an accept-file entry matched no finding",
            Rule::HistoryNotRecorded => "the runner's history table refused ward's row",
        }
    }

    /// The rule a user named, if it is one.
    pub(crate) fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// The names of the rules a comment or accept entry may name.
    pub(crate) fn ignorable_names() -> Vec<&'static str> {
        Rule::ALL
            .into_iter()
            .filter(|rule| rule.ignorable().is_ok())
            .map(Rule::name)
            .collect()
    }

    /// The rule listing of `ward check --help`, grouped by level.
    pub(crate) fn listing() -> String {
        let mut text = String::from("Findings (the most severe level each rule reports at):\n");
        for level in [Level::Fail, Level::Warn, Level::Info] {
            for rule in Rule::ALL.into_iter().filter(|rule| rule.level() == level) {
                text += &format!("  {} {:<21} {}\n", level.label(), rule.name(), rule.help());
            }
        }
        text
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.name()), Some(rule));
            assert_eq!(serde_json::to_value(rule).unwrap(), rule.name());
        }
        let mut names: Vec<&str> = Rule::ALL.iter().map(|rule| rule.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
        assert_eq!(Rule::from_name("row-lost"), None);
    }

    #[test]
    fn history_and_errors_cannot_be_ignored() {
        assert_eq!(Rule::MigrationError.ignorable(), Err(NotIgnorable::Blocks));
        assert_eq!(Rule::DirtyHistory.ignorable(), Err(NotIgnorable::Blocks));
        assert_eq!(Rule::StaleAccept.ignorable(), Err(NotIgnorable::AboutWard));
        assert_eq!(Rule::BlockingLock.ignorable(), Ok(()));
        assert_eq!(Rule::ignorable_names().len(), 17);
    }

    #[test]
    fn the_listing_names_every_rule_once() {
        let listing = Rule::listing();
        for rule in Rule::ALL {
            assert_eq!(
                listing.matches(&format!(" {} ", rule.name())).count(),
                1,
                "{rule} in\n{listing}"
            );
        }
    }
}
