//! ward on the newest Postgres major Debian packages (18), in a container laid
//! out like the official `postgres:18` image: the volume is mounted at
//! /var/lib/postgresql and PGDATA is /var/lib/postgresql/18/docker below it.
//! ward must read the layout from the container, not assume 15's.

use crate::support::server::Server;
use crate::support::ward;

/// An order-independent checksum of one table.
fn checksum(server: &Server, table: &str) -> String {
    server.psql(
        "postgres",
        &format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM {table} x"
        ),
    )
}

#[test]
fn volume_snapshot_round_trip_on_the_postgres_18_layout() {
    let server = Server::start(18);
    assert!(
        server
            .psql("postgres", "SHOW server_version")
            .starts_with("18."),
        "not an 18 server"
    );
    server.psql(
        "postgres",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
    );
    let before = checksum(&server, "notes");
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();

    ward()
        .args(["snapshot", "create", "before", "--container", server.name()])
        .args(["--store", store_arg])
        .ok();
    ward()
        .args(["snapshot", "verify", "before", "--store", store_arg])
        .ok();

    server.psql(
        "postgres",
        "DELETE FROM notes WHERE id % 2 = 0; CREATE TABLE later (x int)",
    );
    assert_ne!(checksum(&server, "notes"), before);

    ward()
        .args([
            "snapshot",
            "restore",
            "before",
            "--container",
            server.name(),
        ])
        .args(["--store", store_arg, "--yes"])
        .ok();
    assert_eq!(
        checksum(&server, "notes"),
        before,
        "rows differ after restore"
    );
    assert_eq!(
        server.psql("postgres", "SELECT to_regclass('later') IS NULL"),
        "t\n",
        "a table made after the snapshot survived the restore"
    );
    assert_eq!(
        server.psql("postgres", "SHOW data_directory"),
        "/var/lib/postgresql/18/docker\n"
    );
}
