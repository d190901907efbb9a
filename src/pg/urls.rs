//! Building `postgres://` URLs, in one place.
//!
//! ward hands URLs to child processes (Django, `sqlx`, a throwaway server's
//! clients) and to its own connections. Every part is percent-encoded the same
//! way here, so a password with `@` or `/`, or a database named `x y`, survives
//! the round trip through `pg::parse_url`. Passwords in these URLs are for
//! connections and child environments only; messages use `pg::describe`.

use anyhow::Result;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::error::UsageError;
use crate::redact::percent_all;

/// The parts of a TCP connection URL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UrlParts<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
}

/// `postgres://user[:password]@host:port/database`, every part encoded.
pub(crate) fn tcp_url(parts: UrlParts<'_>) -> String {
    let password = parts
        .password
        .map(|secret| format!(":{}", percent_all(secret)))
        .unwrap_or_default();
    // An IPv6 literal needs brackets in a URL's authority.
    let host = if parts.host.contains(':') && !parts.host.starts_with('[') {
        format!("[{}]", parts.host)
    } else {
        parts.host.to_string()
    };
    format!(
        "postgres://{}{password}@{host}:{}/{}",
        percent_all(parts.user),
        parts.port,
        percent_all(parts.database)
    )
}

/// A URL for a parsed configuration (with the password: only for child
/// processes' environment). A Unix-socket host becomes `localhost`.
pub(crate) fn url_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        _ => "localhost".into(),
    };
    let password = config
        .get_password()
        .map(|secret| String::from_utf8_lossy(secret).into_owned());
    tcp_url(UrlParts {
        user: config.get_user().unwrap_or("postgres"),
        password: password.as_deref(),
        host: &host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or("postgres"),
    })
}

/// Replaces the database part of a URL that was parsed before.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{}", percent_all(database)));
            parsed.to_string()
        }
        // A key=value connection string: rebuild it as a URL.
        Err(_) => match super::parse_url(url) {
            Ok(mut config) => {
                config.dbname(database);
                url_of(&config)
            }
            Err(_) => url.to_string(),
        },
    }
}

/// The URL of the cluster's maintenance database for `url`, and the database
/// `url` names (renames and copies cannot run while connected to that one).
pub(crate) fn maintenance_url(url: &str) -> Result<(String, String)> {
    let config = super::parse_url(url)?;
    let database = config.get_dbname().unwrap_or("postgres").to_string();
    url::Url::parse(url).map_err(|_| UsageError("the database URL is not a URL".into()))?;
    Ok((with_database(url, "postgres"), database))
}

/// The URL as Django's settings parse it (`postgres://` only).
pub(crate) fn postgres_scheme_url(url: &str) -> Result<String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    Ok(url_of(&super::parse_url(url)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_encoded_and_survive_parsing() {
        let url = tcp_url(UrlParts {
            user: "app user",
            password: Some("p@ss/word:1"),
            host: "127.0.0.1",
            port: 5433,
            database: "x y",
        });
        assert_eq!(
            url,
            "postgres://app%20user:p%40ss%2Fword%3A1@127.0.0.1:5433/x%20y"
        );
        let config = super::super::parse_url(&url).unwrap();
        assert_eq!(config.get_user(), Some("app user"));
        assert_eq!(config.get_password(), Some(&b"p@ss/word:1"[..]));
        assert_eq!(config.get_dbname(), Some("x y"));
        assert_eq!(config.get_ports(), &[5433]);
    }

    #[test]
    fn ipv6_hosts_get_brackets() {
        let url = tcp_url(UrlParts {
            user: "postgres",
            password: None,
            host: "::1",
            port: 5432,
            database: "app",
        });
        assert_eq!(url, "postgres://postgres@[::1]:5432/app");
    }

    #[test]
    fn maintenance_url_swaps_the_database() {
        let (admin, database) = maintenance_url("postgres://a:b@h:5/app?sslmode=disable").unwrap();
        assert_eq!(database, "app");
        assert_eq!(admin, "postgres://a:b@h:5/postgres?sslmode=disable");
        assert_eq!(
            with_database("postgres://a:b@h:5/app", "x y"),
            "postgres://a:b@h:5/x%20y"
        );
    }

    #[test]
    fn key_value_strings_become_urls() {
        let url = postgres_scheme_url("host=db user=app password=s3cret dbname=shop").unwrap();
        assert_eq!(url, "postgres://app:s3cret@db:5432/shop");
    }
}
