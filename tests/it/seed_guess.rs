//! Issue 10's last points, each on a minimal schema: JSON columns shaped
//! like the rows already present (or their DEFAULT) without copying a
//! value; ULIDs and UUIDs in text columns; cycles of NOT NULL foreign keys
//! (DEFERRABLE ones seeded in one transaction, the others left alone so the
//! guessed spec is never one `--spec` refuses); and `--truncate` asking
//! before its CASCADE empties tables outside the spec.

use crate::support::seed::*;
use crate::support::*;

/// An order-independent fingerprint of `column` of `table`.
fn fingerprint(url: &str, table: &str, column: &str) -> String {
    value(
        url,
        &format!(
            "SELECT count(*) || ':' || md5(string_agg({column}::text, ',' ORDER BY {column}::text)) FROM {table}"
        ),
    )
}

#[test]
fn json_columns_follow_the_shape_of_their_rows_and_defaults_without_copying_values() {
    let c = cluster();
    let ddl = r#"CREATE TABLE profile (id serial PRIMARY KEY, prefs jsonb NOT NULL, extra json);
         INSERT INTO profile (prefs, extra) VALUES
           ('{"theme": "dark-SECRET1", "email": "jane@secret-domain.org", "visits": 12,
              "tags": ["alpha-SECRET2", "beta"], "address": {"postcode": "SW1A 1AA"},
              "scores": {"9434765919": 1.5}}', '[1, 2]'),
           ('{"theme": "light", "email": "john@secret-domain.org", "visits": 3,
              "address": {"postcode": "LS1 4AP"}, "scores": {}}', NULL);
         CREATE TABLE settings (id serial PRIMARY KEY,
            data jsonb NOT NULL DEFAULT '{"notify": true, "langs": ["en"], "since": "2024-01-01"}',
            blob jsonb NOT NULL DEFAULT '{}');"#;
    let url = database(&c, "shapes", ddl);
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    assert!(
        text.contains(r#"columns.prefs = { shape = '{"address":{"postcode":"address.postcode"},"email":"internet.email","scores":{"*":"float"},"theme":"lorem.words","visits":"int"}' }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"columns.extra = { shape = '["int","2..2"]', null_ratio = 0.1 }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"columns.data = { shape = '{"langs":["lorem.words","1..1"],"notify":"bool","since":"date"}' }"#),
        "{text}"
    );
    assert!(text.contains("columns.blob = \"json\""), "{text}");
    for secret in [
        "SECRET",
        "secret-domain",
        "SW1A",
        "LS1",
        "9434765919",
        "dark",
        "alpha",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} copied into the spec:\n{text}"
        );
    }
    // Unedited: the empty table is seeded with its DEFAULT's shape.
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    assert_eq!(
        int(
            &url,
            r"SELECT count(*) FROM settings WHERE jsonb_typeof(data->'notify') <> 'boolean'
               OR jsonb_array_length(data->'langs') <> 1 OR data->>'since' !~ '^\d{4}-\d{2}-\d{2}$'"
        ),
        0
    );
    assert_eq!(int(&url, "SELECT count(*) FROM settings"), 100);
    // The kept table, seeded after all: every value has the rows' shape.
    std::fs::write(
        &spec,
        text.replace("skip = true  # holds rows", "# holds rows"),
    )
    .unwrap();
    let r = seed(&url, &spec, &["--truncate"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(int(&url, "SELECT count(*) FROM profile"), 100);
    assert_eq!(
        int(
            &url,
            r"SELECT count(*) FROM profile WHERE jsonb_typeof(prefs->'visits') <> 'number'
               OR prefs->>'email' !~ '^[^@]+@[^@]+$' OR prefs->'address'->>'postcode' !~ '^[A-Z]{1,2}[0-9]'
               OR jsonb_typeof(prefs->'scores') <> 'object' OR jsonb_typeof(prefs->'theme') <> 'string'
               OR (prefs ? 'tags' AND jsonb_array_length(prefs->'tags') <> 2)"
        ),
        0
    );
    // `tags` is in one of the two rows: it may be data, so it is not kept.
    assert_eq!(
        int(&url, "SELECT count(*) FROM profile WHERE prefs ? 'tags'"),
        0
    );
    assert!(
        int(
            &url,
            "SELECT count(*) FROM profile WHERE NOT prefs ? 'tags'"
        ) > 0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM profile WHERE prefs::text ~ 'SECRET|secret-domain|SW1A|9434765919'"
        ),
        0
    );
    // The same values whatever --jobs.
    let again = database(&c, "shapes_j1", ddl);
    sql(&again, "TRUNCATE profile");
    assert_eq!(seed(&again, &spec, &["-j", "1"]).code(), 0);
    for (t, col) in [
        ("profile", "prefs"),
        ("profile", "extra"),
        ("settings", "data"),
    ] {
        assert_eq!(
            fingerprint(&url, t, col),
            fingerprint(&again, t, col),
            "{t}.{col}"
        );
    }
}

#[test]
fn ulids_and_uuids_in_text_columns_are_canonical_unique_and_deterministic() {
    let c = cluster();
    let ddl = "CREATE TABLE doc (id char(26) PRIMARY KEY, ext_uuid text NOT NULL UNIQUE,
            owner_ulid varchar(40), ref_id varchar(36) NOT NULL, api_key char(36),
            token_uuid varchar(20), code text CHECK (length(code) = 26));
         CREATE TABLE page (id serial PRIMARY KEY, doc_id char(26) NOT NULL REFERENCES doc);";
    let (url, text) = seeds_unedited(&c, "ids", ddl);
    for line in [
        "columns.id = \"ulid\"",
        "columns.ext_uuid = \"uuid\"",
        "columns.owner_ulid = { gen = \"ulid\", null_ratio = 0.1 }",
        "columns.ref_id = \"uuid\"",
        "columns.api_key = { gen = \"uuid\", null_ratio = 0.1 }",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(
        !text.contains("columns.token_uuid = { gen = \"uuid\""),
        "{text}"
    );
    assert!(
        !text.contains("columns.code = { gen = \"ulid\""),
        "not id-like: {text}"
    );
    let ulid = "'^[0-7][0-9A-HJKMNP-TV-Z]{25}$'";
    let uuid = "'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'";
    assert_eq!(
        int(
            &url,
            &format!(
                "SELECT count(*) FROM doc WHERE id !~ {ulid} OR owner_ulid !~ {ulid}
                   OR ext_uuid !~ {uuid} OR ref_id !~ {uuid} OR api_key !~ {uuid}"
            )
        ),
        0
    );
    assert_eq!(int(&url, "SELECT count(DISTINCT id) FROM doc"), 100);
    assert_eq!(int(&url, "SELECT count(DISTINCT ext_uuid) FROM doc"), 100);
    assert!(int(&url, "SELECT count(owner_ulid) FROM doc") > 50);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM page p LEFT JOIN doc d ON d.id = p.doc_id WHERE d.id IS NULL"
        ),
        0
    );
    // The same values whatever --jobs, on enough rows for several chunks
    // (a chunk is 2,000 rows): one thread against three.
    let big = text.replace("rows = 100\n", "rows = 4500\n");
    assert_ne!(big, text, "the root table's row count is in the spec");
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("big.toml");
    std::fs::write(&spec, big).unwrap();
    let (one, three) = (database(&c, "ids_j1", ddl), database(&c, "ids_j3", ddl));
    for (db, jobs) in [(&one, "1"), (&three, "3")] {
        let r = seed(db, &spec, &["-j", jobs]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
    }
    assert_eq!(int(&one, "SELECT count(*) FROM doc"), 4500);
    for col in ["id", "ext_uuid", "owner_ulid", "ref_id"] {
        assert_eq!(
            fingerprint(&one, "doc", col),
            fingerprint(&three, "doc", col),
            "{col}"
        );
    }
}

#[test]
fn a_not_null_cycle_with_a_deferrable_key_is_seeded_in_one_transaction() {
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "defer_cycle",
        "CREATE TABLE a (id int PRIMARY KEY, b_id int NOT NULL);
         CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a DEFERRABLE);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;
         CREATE TABLE c (id serial PRIMARY KEY, a_id int NOT NULL REFERENCES a);",
    );
    assert!(!text.contains("\nskip = true"), "{text}");
    // Every key points at a row (Postgres checked b.a_id at commit).
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM b LEFT JOIN a ON a.id = b.a_id WHERE a.id IS NULL"
        ),
        0
    );
    assert_eq!(int(&url, "SELECT count(*) FROM a WHERE b_id IS NULL"), 0);
}

#[test]
fn a_cycle_no_insert_order_satisfies_is_left_alone_and_the_rest_is_seeded() {
    let c = cluster();
    let url = database(
        &c,
        "stuck",
        "CREATE TABLE t0 (id serial PRIMARY KEY);
         CREATE TABLE t1 (id serial PRIMARY KEY, r0 int NOT NULL REFERENCES t0);
         ALTER TABLE t0 ADD COLUMN r1 int NOT NULL REFERENCES t1;
         CREATE TABLE t2 (id serial PRIMARY KEY, r0 int NOT NULL REFERENCES t0);
         CREATE TABLE t3 (id serial PRIMARY KEY, r0 int REFERENCES t0, note text NOT NULL);
         CREATE TABLE other (id serial PRIMARY KEY, name text NOT NULL);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    for t in ["t0", "t1"] {
        assert!(
            text.contains(&format!(
                "[tables.\"public.{t}\"]\nskip = true  # in a cycle of NOT NULL foreign keys none of which is DEFERRABLE (public.t0 ↔ public.t1)"
            )),
            "{t}:\n{text}"
        );
    }
    assert!(
        text.contains(
            "[tables.\"public.t2\"]\nskip = true  # its NOT NULL key r0 needs rows of public.t0"
        ),
        "{text}"
    );
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 0, "{}\n{text}", r.stderr());
    assert_eq!(int(&url, "SELECT count(*) FROM other"), 100);
    assert_eq!(int(&url, "SELECT count(*) FROM t3 WHERE r0 IS NULL"), 100);
    assert_eq!(int(&url, "SELECT count(*) FROM t0"), 0);
}

#[test]
fn truncate_asks_before_its_cascade_empties_tables_beyond_the_spec() {
    let c = cluster();
    let url = database(
        &c,
        "cascade",
        "CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent);
         CREATE TABLE grandchild (id serial PRIMARY KEY, child_id int NOT NULL REFERENCES child);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    let only_parent = skip_table(&skip_table(&text, "public.child"), "public.grandchild");
    std::fs::write(&spec, only_parent).unwrap();
    let counts = "SELECT (SELECT count(*) FROM parent) || ':' || (SELECT count(*) FROM child) || ':' || (SELECT count(*) FROM grandchild)";
    let before = value(&url, counts);
    // grandchild is reached through child: the CASCADE is transitive.
    let err = seed(&url, &spec, &["--truncate"]).fails_with(
        2,
        "--truncate would also empty public.child, public.grandchild",
    );
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(value(&url, counts), before, "nothing changed");
    let r = seed(&url, &spec, &["--truncate", "-y"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(value(&url, counts), "100:0:0");
    // --yes means nothing without --truncate.
    let r = seed(&url, &spec, &["--yes"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
}

#[test]
fn keys_seen_in_one_row_only_are_data_and_never_reach_the_spec_or_the_rows() {
    let c = cluster();
    let url = database(
        &c,
        "datakeys",
        r#"CREATE TABLE contacts (id serial PRIMARY KEY, book jsonb NOT NULL);
           INSERT INTO contacts (book) VALUES
             ('{"mary_jones": "07700 900123", "kind": "home"}'),
             ('{"jsmith": "admin", "kind": "work"}'),
             ('{"asthma": true, "kind": "home"}');"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let (_, text) = guess(&url, tmp.path());
    assert!(
        text.contains(r#""kind":"#),
        "a key every row has is the app's: {text}"
    );
    for data in ["mary_jones", "jsmith", "asthma"] {
        assert!(!text.contains(data), "{data} reached the spec: {text}");
    }
}

#[test]
fn truncate_leaves_tables_that_inherit_from_a_seeded_one() {
    let c = cluster();
    let url = database(
        &c,
        "inherit",
        "CREATE TABLE event (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE archived_event (archived_on date) INHERITS (event);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let archived = value(&url, "SELECT count(*) FROM ONLY archived_event");
    assert_ne!(archived, "0");
    std::fs::write(&spec, skip_table(&text, "public.archived_event")).unwrap();
    let r = seed(&url, &spec, &["--truncate"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(
        value(&url, "SELECT count(*) FROM ONLY archived_event"),
        archived,
        "a table outside the spec that inherits from a seeded one keeps its rows"
    );
}
