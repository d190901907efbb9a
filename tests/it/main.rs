//! ward's integration tests, one binary: each module is one area (the file
//! name says which), all of them share `support` (clusters, containers, the
//! corpus builder, the `ward()` command builder). One binary links ward once
//! instead of once per file; the price is that every test may run at the same
//! time as any other, so each test owns its resources (unique names, its own
//! temp dirs and ports) and never sweeps what another test made.

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

mod support;

mod backup;
mod backup_s3;
mod check;
mod check_accept;
mod check_base_builtin;
mod check_conversions;
mod check_corpus;
mod check_corpus_seeded;
mod check_datadir;
mod check_history;
mod check_roundtrip;
mod check_snapshot;
mod check_spec;
mod cli;
mod clinical_phone;
mod django_check;
mod django_check_parity;
mod django_check_volatile;
mod django_cms;
mod django_real;
mod django_seed;
mod fast_snapshot;
mod hostile;
mod postgres18;
mod realism;
mod remote_lock;
mod remote_store;
mod reports;
mod restore_config;
mod restore_datadir_full;
mod restore_doctor_sweep;
mod restore_fixheal;
mod restore_heal_anywhere;
mod restore_kill;
mod restore_regressions;
mod restore_space;
mod seed;
mod seed_container;
mod seed_corpus;
mod seed_guess;
mod seed_property;
mod seed_spec;
mod seed_spec_regressions;
mod snapshot;
mod snapshot_faults;
mod snapshot_pg18_link;
mod snapshot_trust;
mod store_busy;
mod store_incomplete;
mod trust_delete;
mod trust_docker_timeout;
mod trust_store_full;
