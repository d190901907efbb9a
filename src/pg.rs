//! Reaching Postgres: connect with clear errors (and never a password in
//! them), identifier quoting, and server facts.
//!
//! TLS is off: ward talks to local and compose databases; a URL asking for
//! `sslmode=require` is refused with an explanation rather than silently
//! downgraded.

mod bindir;
pub mod cluster;
pub(crate) mod major;
pub(crate) mod urls;

pub(crate) use major::parse_major;
pub(crate) use urls::{UrlParts, maintenance_url, tcp_url, url_of, with_database};

use std::time::Duration;

use anyhow::Result;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::UsageError;

/// Where a URL points, for messages: `user@host:port/db`, without the password.
pub(crate) fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// How long ward waits for a server (Postgres or the Docker engine) to
/// connect *and answer*: `WARD_CONNECT_TIMEOUT` seconds, default 10.
pub(crate) fn connect_timeout() -> Duration {
    std::env::var("WARD_CONNECT_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(10), Duration::from_secs)
}

/// Parses a connection URL; the error never repeats the URL (it may hold a password).
pub(crate) fn parse_url(url: &str) -> Result<Config> {
    let mut config: Config = url.parse().map_err(|_| {
        UsageError(
            "the database URL is not valid — expected postgres://user:password@host:port/dbname"
                .into(),
        )
    })?;
    if config.get_user().is_none() {
        config.user("postgres");
    }
    if config.get_dbname().is_none() {
        let user = config.get_user().unwrap_or("postgres").to_string();
        config.dbname(user);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout());
    }
    if let Some(pw) = config.get_password() {
        crate::redact::register(&String::from_utf8_lossy(pw));
    }
    if matches!(config.get_ssl_mode(), SslMode::Require) {
        return Err(UsageError(
            "the database URL asks for sslmode=require, but ward connects without TLS — \
             use sslmode=disable or prefer for local and compose databases"
                .into(),
        )
        .into());
    }
    config.application_name("ward");
    Ok(config)
}

/// Connects, turning the common failures into one-line errors with a remedy.
pub async fn connect(url: &str) -> Result<Client> {
    let config = parse_url(url)?;
    let target = describe(&config);
    let (client, connection) = answered(&config, &target)
        .await?
        .map_err(|e| UsageError(explain_connect_error(&e, &target)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// `config.connect`, bounded: the socket-level timeout does not cover a
/// server that accepts the connection and then never answers the startup.
pub(crate) async fn answered(
    config: &Config,
    target: &str,
) -> Result<
    std::result::Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        tokio_postgres::Error,
    >,
> {
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or_else(connect_timeout);
    tokio::time::timeout(limit, config.connect(NoTls))
        .await
        .map_err(|_| {
            UsageError(format!(
                "{target} accepted the connection but did not answer within {}s — is it a \
                 Postgres server, and is it healthy? (WARD_CONNECT_TIMEOUT sets the limit)",
                limit.as_secs()
            ))
            .into()
        })
}

fn explain_connect_error(e: &tokio_postgres::Error, target: &str) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "28P01" | "28000" => format!(
                "the database at {target} refused the login ({}) — check the user and password in \
                 --database-url / DATABASE_URL",
                db.message()
            ),
            "3D000" => format!(
                "{} at {target} — create it (createdb) or fix the database name in the URL",
                db.message()
            ),
            _ => format!(
                "the database at {target} refused the connection: {} ({code})",
                db.message()
            ),
        };
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    format!(
        "cannot reach the database at {target} ({msg}) — is Postgres running and is \
         --database-url / DATABASE_URL right? (`ward doctor` checks)"
    )
}

/// A server error as one line: message (SQLSTATE), detail and hint when given.
pub(crate) fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!(": {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!(" — {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Quotes an SQL string literal, as libpq's `PQescapeLiteral` does (a
/// backslash makes it an `E''` literal, right whatever
/// `standard_conforming_strings` says).
pub(crate) fn quote_literal(text: &str) -> String {
    postgres_protocol::escape::escape_literal(text)
}

/// Quotes an SQL identifier, as libpq's `PQescapeIdentifier` does.
pub(crate) fn quote_ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// `CREATE DATABASE new TEMPLATE source` with the cheapest strategy the
/// server has: the one way ward copies a database (check's clones, fast
/// snapshots and their restores). Callers turn the error into their own
/// message (a busy source, a missing CREATEDB, a full disk).
pub(crate) async fn clone_database(
    admin: &Client,
    source: &str,
    new: &str,
    owner: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let version: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .get(0);
    // FILE_COPY copies files (and checkpoints) instead of WAL-logging every
    // block: about a second per GB. PG 15 added the choice (and made WAL_LOG the default).
    let strategy = if version >= 150_000 {
        " STRATEGY FILE_COPY"
    } else {
        ""
    };
    let owner = owner
        .map(|role| format!(" OWNER {}", quote_ident(role)))
        .unwrap_or_default();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}{owner}{strategy}",
            quote_ident(new),
            quote_ident(source)
        ))
        .await
}

/// Facts about the connected server and role.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ServerInfo {
    pub version: String,
    pub version_num: i32,
    pub user: String,
    pub database: String,
    pub superuser: bool,
    pub create_db: bool,
    pub create_in_database: bool,
}

pub(crate) async fn server_info(client: &Client) -> Result<ServerInfo> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int,
                    current_user::text, current_database()::text, r.rolsuper, r.rolcreatedb,
                    has_database_privilege(current_database(), 'CREATE')
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await?;
    Ok(ServerInfo {
        version: row.get(0),
        version_num: row.get(1),
        user: row.get(2),
        database: row.get(3),
        superuser: row.get(4),
        create_db: row.get(5),
        create_in_database: row.get(6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes_and_escapes_backslashes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), " E'a\\\\b'");
    }

    #[test]
    fn describe_hides_the_password() {
        let c = parse_url("postgres://app:s3cret@db.local:6543/clinic").unwrap();
        let d = describe(&c);
        assert_eq!(d, "app@db.local:6543/clinic");
    }

    #[test]
    fn bad_urls_do_not_echo_secrets() {
        let e = parse_url("postgres://app:s3cret@host:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
