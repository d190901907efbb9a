//! `[snapshot] migrations = "DIR"` in ward.toml: `restore` compares the
//! snapshot's migration head with that directory when `--migrations` is not
//! given (relative to ward.toml's directory); a configured path that is not
//! a directory is one clear error.

use crate::support::docker::Pg;
use crate::support::*;

#[test]
fn restore_uses_the_migrations_directory_named_in_ward_toml() {
    let pg = Pg::start();
    pg.psql(
        "create table _sqlx_migrations(version bigint primary key, description text not null, \
         installed_on timestamptz not null default now(), success boolean not null, \
         checksum bytea not null, execution_time bigint not null); \
         insert into _sqlx_migrations values \
         (20240101000000, 'init', now(), true, '\\x00', 1)",
    );
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let st = store.path().display().to_string();
    let sd = state.path().display().to_string();
    ward()
        .args([
            "snapshot",
            "create",
            "m",
            "--container",
            &pg.name,
            "--store",
            &st,
        ])
        .env("WARD_STATE_DIR", &sd)
        .ok();
    let project = tempfile::tempdir().unwrap();
    let sql = project.path().join("backend/sql");
    std::fs::create_dir_all(&sql).unwrap();
    for f in ["20240101000000_init.sql", "20240505000000_next.sql"] {
        std::fs::write(sql.join(f), "select 1;").unwrap();
    }
    let toml = "[snapshot]\nmigrations = \"backend/sql\"\n";
    // No --yes and no terminal: it stops before replacing anything, after
    // the migration warning.
    let restore = || {
        ward()
            .cwd(project.path())
            .args([
                "snapshot",
                "restore",
                "m",
                "--container",
                &pg.name,
                "--store",
                &st,
            ])
            .env("WARD_STATE_DIR", &sd)
    };
    std::fs::write(project.path().join("ward.toml"), toml).unwrap();
    let r = restore().run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(r.stderr().contains("needs confirmation"), "{}", r.stderr());
    assert!(
        r.stderr().contains("BEHIND") && r.stderr().contains("20240505000000_next.sql"),
        "the configured directory was not used: {}",
        r.stderr()
    );
    // --migrations wins over the file.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("20240101000000_init.sql"), "select 1;").unwrap();
    let r = restore()
        .args(["--migrations", &other.path().display().to_string()])
        .run();
    r.fails_with(2, "needs confirmation");
    assert!(!r.stderr().contains("BEHIND"), "{}", r.stderr());
    // A configured path that is not a directory: one line saying so.
    std::fs::write(
        project.path().join("ward.toml"),
        "[snapshot]\nmigrations = \"no/such/dir\"\n",
    )
    .unwrap();
    let r = restore().run();
    r.fails_with(
        2,
        "[snapshot] migrations = \"no/such/dir\" is not a directory",
    );
    assert!(pg.running());
}
