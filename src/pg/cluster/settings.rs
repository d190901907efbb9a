//! The server settings of a throwaway cluster, by what it runs on.
//!
//! A fresh `initdb` keeps its own postgresql.conf and gets speed settings (a
//! throwaway needs no durability). A copy of someone's data directory does
//! not keep its own configuration: a Debian-style data directory has no
//! postgresql.conf at all, and its postgresql.auto.conf may name libraries,
//! archive commands or paths of another machine. So the copy gets ward's
//! config, hba and ident files, and the settings that must win over
//! postgresql.auto.conf go on the command line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Settings every throwaway server gets: reachable on 127.0.0.1 and on a
/// socket in its own private directory, nowhere else.
pub(super) fn common(root: &Path, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("listen_addresses", "127.0.0.1".into()),
        ("port", port.to_string()),
        ("unix_socket_directories", root.display().to_string()),
        ("shared_buffers", "128MB".into()),
    ]
}

/// A fresh cluster holds nothing worth an fsync.
pub(super) fn fresh() -> Vec<(&'static str, String)> {
    vec![
        ("fsync", "off".into()),
        ("synchronous_commit", "off".into()),
        ("full_page_writes", "off".into()),
        ("max_connections", "50".into()),
        ("max_wal_size", "4GB".into()),
        ("checkpoint_timeout", "30min".into()),
    ]
}

/// The settings that must win over a copy's postgresql.auto.conf, for a
/// server of PostgreSQL `major` (some exist only from a version on, and a
/// server refuses a setting it does not know).
pub(super) fn copy(root: &Path, major: u32) -> Vec<(&'static str, String)> {
    let file = |name: &str| root.join(name).display().to_string();
    let mut settings = vec![
        ("config_file", file("ward.conf")),
        ("hba_file", file("pg_hba.conf")),
        ("ident_file", file("pg_ident.conf")),
        ("unix_socket_group", String::new()),
        ("unix_socket_permissions", "0700".into()),
        ("ssl", "off".into()),
        ("bonjour", "off".into()),
        ("password_encryption", "scram-sha-256".into()),
        // Libraries, archiving and paths of the source machine.
        ("shared_preload_libraries", String::new()),
        ("session_preload_libraries", String::new()),
        ("local_preload_libraries", String::new()),
        ("archive_mode", "off".into()),
        ("archive_command", String::new()),
        ("external_pid_file", String::new()),
        ("huge_pages", "off".into()),
        ("jit", "off".into()),
        ("default_transaction_read_only", "off".into()),
        // Server output goes to ward's log file, and no statement text (a
        // password) into it.
        ("logging_collector", "off".into()),
        ("log_destination", "stderr".into()),
        ("log_statement", "none".into()),
        ("log_min_duration_statement", "-1".into()),
        ("log_min_error_statement", "panic".into()),
    ];
    if major >= 12 {
        settings.push(("restore_command", String::new()));
        settings.push(("primary_conninfo", String::new()));
    }
    if major >= 15 {
        settings.push(("archive_library", String::new()));
    } else {
        settings.push(("stats_temp_directory", "pg_stat_tmp".into()));
    }
    settings
}

/// ward's own config, hba and ident files beside a copy (in `root`, the
/// cluster's directory), for a server on a copy of `label`.
pub(super) fn write_copy_files(root: &Path, label: &str) -> Result<()> {
    let files = [
        (
            "ward.conf",
            format!(
                "# Written by ward for a throwaway server on a copy of {label}.\n\
                 # The copy's own postgresql.conf is not read; the command line overrides\n\
                 # what its postgresql.auto.conf could set that would get in the way.\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 lc_messages = 'C'\n\
                 cluster_name = 'ward-check'\n"
            ),
        ),
        (
            "pg_hba.conf",
            "# The socket lives in a 0700 directory: only the server's own user and root reach it.\n\
             local all all trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
                .to_string(),
        ),
        ("pg_ident.conf", String::new()),
    ];
    for (file, text) in files {
        let path = root.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The `-o` argument of `pg_ctl start`: every setting as `-c 'name=value'`,
/// quoted for the `/bin/sh -c` through which pg_ctl starts postgres.
pub(super) fn command_line(settings: &[(&'static str, String)]) -> String {
    settings
        .iter()
        .map(|(name, value)| format!("-c {}", sh_quote(&format!("{name}={value}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for `/bin/sh -c`.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(
            command_line(&[("port", "5555".into()), ("archive_command", String::new())]),
            "-c 'port=5555' -c 'archive_command='"
        );
    }

    #[test]
    fn copy_settings_follow_the_major_version() {
        let names = |major| {
            copy(Path::new("/tmp/x"), major)
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        assert!(names(15).contains(&"archive_library"));
        assert!(!names(15).contains(&"stats_temp_directory"));
        assert!(names(14).contains(&"stats_temp_directory"));
        assert!(!names(11).contains(&"restore_command"));
        assert!(names(12).contains(&"restore_command"));
        let settings = copy(Path::new("/tmp/x"), 15);
        assert!(settings.contains(&("config_file", "/tmp/x/ward.conf".into())));
    }

    #[test]
    fn every_server_listens_on_loopback_only() {
        let settings = common(Path::new("/tmp/x"), 5555);
        assert!(settings.contains(&("listen_addresses", "127.0.0.1".into())));
        assert!(settings.contains(&("port", "5555".into())));
        assert!(settings.contains(&("unix_socket_directories", "/tmp/x".into())));
    }
}
