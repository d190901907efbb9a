//! Regression tests for issue 10's defects, each on the smallest schema that
//! showed it: `--init-spec` then `--spec` without edits must fill every
//! table (the database itself checks every constraint on the way in), and
//! what cannot be done must be a one-line `file:line` error with exit 2.

use crate::support::seed::*;
use crate::support::*;

#[test]
fn unique_nullable_key_closing_a_cycle_seeds_without_panic() {
    // Defect 1: index out of bounds in plan/unique.rs.
    let c = cluster();
    let (url, _) = seeds_unedited(
        &c,
        "d1",
        "CREATE TABLE a (id int PRIMARY KEY, b_id int UNIQUE);
         CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;",
    );
    assert!(int(&url, "SELECT count(b_id) FROM a") > 0);
}

#[test]
fn link_table_wanting_more_pairs_than_a_kept_parent_allows_is_an_error_not_a_hang() {
    // Defect 2: 100 % CPU, no output.
    let c = cluster();
    let url = database(
        &c,
        "d2",
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE q (id int PRIMARY KEY);
         CREATE TABLE link (p_id int NOT NULL REFERENCES p, q_id int NOT NULL REFERENCES q, UNIQUE (p_id, q_id));",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.toml");
    std::fs::write(
        &spec,
        "version = 1\n[tables.\"public.p\"]\nskip = true\n[tables.\"public.q\"]\nrows = 5\ncolumns.id = \"sequence\"\n\n[tables.\"public.link\"]\nrows = 50\ncolumns.p_id = \"ref\"\ncolumns.q_id = \"ref\"\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = seed(&url, &spec, &[]);
    assert!(started.elapsed().as_secs() < 60);
    let err = r.fails_with(2, "distinct pairs");
    assert!(err.contains("s.toml:8: public.link"), "{err}");
    assert_eq!(
        int(&url, "SELECT count(*) FROM q"),
        0,
        "nothing half-written"
    );
}

#[test]
fn not_null_cycle_beside_a_nullable_key_fails_fast_with_a_spec_line() {
    // Found by the property test: t0.r0 → t1 and t1.r0 → t0 both NOT NULL,
    // plus a nullable t1.r1 → t0. The planner deferred r1 (a parallel key,
    // not the cycle's) again and again: 100 % CPU, no output.
    let c = cluster();
    let url = database(
        &c,
        "cyc",
        "CREATE TABLE t0 (id serial PRIMARY KEY);
         CREATE TABLE t1 (id serial PRIMARY KEY, r0 int NOT NULL REFERENCES t0, r1 int REFERENCES t0);
         ALTER TABLE t0 ADD COLUMN r0 int NOT NULL REFERENCES t1;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    // The guessed spec leaves the cycle alone (issue 10: it used to write a
    // spec its own --spec refused); written by hand, the spec is refused.
    assert!(
        text.contains("skip = true  # in a cycle of NOT NULL foreign keys"),
        "{text}"
    );
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    std::fs::write(
        &spec,
        text.replace("skip = true  # in a cycle", "# in a cycle"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = seed(&url, &spec, &[]);
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
    let err = r.fails_with(2, "foreign keys form a cycle");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("spec.toml:"), "{err}\n{text}");
    assert!(
        err.contains("public.t0.r0 → public.t1") && err.contains("public.t1.r0 → public.t0"),
        "names the cycle's keys: {err}"
    );
    assert!(!err.contains("t1.r1"), "r1 is not on the cycle: {err}");
    assert_eq!(
        int(&url, "SELECT count(*) FROM t0"),
        0,
        "nothing half-written"
    );

    // Two nullable parallel keys close the cycle: both are filled after the
    // load (this too spun for ever: the first was deferred again and again).
    let (url, _) = seeds_unedited(
        &c,
        "cyc_ok",
        "CREATE TABLE t0 (id serial PRIMARY KEY);
         CREATE TABLE t1 (id serial PRIMARY KEY, r0 int REFERENCES t0, r1 int REFERENCES t0);
         ALTER TABLE t0 ADD COLUMN r0 int NOT NULL REFERENCES t1;",
    );
    assert!(int(&url, "SELECT count(r0) FROM t1") > 0);
    assert!(int(&url, "SELECT count(r1) FROM t1") > 0);
}

#[test]
fn key_filled_after_the_load_keeps_a_partial_unique_index() {
    // Found by the property test (seeds 1–3): t1.r0 breaks the cycle, is NULL
    // in the first pass (so the partial index was not tested) and the second
    // pass then repeated (r0, a) among the rows WHERE a.
    let c = cluster();
    let (url, _) = seeds_unedited(
        &c,
        "defer_pu",
        "CREATE TABLE t1 (id serial PRIMARY KEY, a bool NOT NULL);
         CREATE TABLE t3 (id serial PRIMARY KEY, r0 int REFERENCES t1);
         ALTER TABLE t1 ADD COLUMN r0 int REFERENCES t3;
         CREATE UNIQUE INDEX t1_one_a ON t1 (r0, a) WHERE a;",
    );
    assert!(int(&url, "SELECT count(r0) FROM t1 WHERE a") > 0);
    assert!(int(&url, "SELECT count(r0) FROM t1") > int(&url, "SELECT count(r0) FROM t1 WHERE a"));
}

#[test]
fn several_keys_to_one_parent_get_a_via_the_validator_accepts() {
    // Defect 3.
    let c = cluster();
    let (_, text) = seeds_unedited(
        &c,
        "d3",
        "CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE mod_add (id serial PRIMARY KEY,
            mod_person_id int NOT NULL REFERENCES person, other_person_id int NOT NULL REFERENCES person);",
    );
    assert!(text.contains("via = \"mod_person_id\""), "{text}");
}

#[test]
fn partial_unique_index_binds_only_the_rows_it_selects() {
    // Defect 4: treated as a full UNIQUE, a bool column cannot be unique.
    let c = cluster();
    let (url, _) = seeds_unedited(
        &c,
        "d4",
        "CREATE TABLE cons (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE member (id serial PRIMARY KEY, cons_id int NOT NULL REFERENCES cons,
            is_principal bool NOT NULL);
         CREATE UNIQUE INDEX one_principal ON member (cons_id, is_principal) WHERE is_principal;",
    );
    assert!(int(&url, "SELECT count(*) FROM member WHERE NOT is_principal") > 0);
}

#[test]
fn values_and_sql_on_foreign_keys_are_used_and_column_checks_hold() {
    // Defects 5 and 9: `CHECK (hub_id <> spoke_id)`, implications,
    // IS NOT NULL disjunctions and column inequalities, with no edits.
    let c = cluster();
    let ddl = "CREATE TABLE node (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE edge (id serial PRIMARY KEY,
            hub_id int NOT NULL REFERENCES node, spoke_id int NOT NULL REFERENCES node,
            CHECK (hub_id <> spoke_id));
         CREATE TABLE booking (id serial PRIMARY KEY,
            starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL,
            paid bool NOT NULL, approved bool NOT NULL,
            email text, phone text,
            CHECK (starts_at < ends_at),
            CHECK (NOT paid OR approved),
            CHECK (email IS NOT NULL OR phone IS NOT NULL));";
    let (url, _) = seeds_unedited(&c, "d5", ddl);
    assert!(int(&url, "SELECT count(*) FROM booking WHERE paid") > 0);

    // The same rows whatever --jobs.
    let one = database(&c, "d5j", ddl);
    let tmp = tempfile::tempdir().unwrap();
    let (spec, _) = guess(&one, tmp.path());
    assert_eq!(seed(&one, &spec, &["-j", "1"]).code(), 0);
    for t in ["node", "edge", "booking"] {
        let sum = |u: &str| {
            value(
                u,
                &format!(
                    "SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x"
                ),
            )
        };
        assert_eq!(sum(&url), sum(&one), "{t}");
    }

    // A hand-given `values` on a foreign key is honoured (it was ignored).
    let edited = database(&c, "d5v", ddl);
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "columns.hub_id = \"ref\"",
        "columns.hub_id = { values = [\"1\"] }",
    );
    let spec2 = tmp.path().join("edited.toml");
    std::fs::write(&spec2, text).unwrap();
    assert_eq!(seed(&edited, &spec2, &[]).code(), 0);
    assert_eq!(
        int(&edited, "SELECT count(*) FROM edge WHERE hub_id <> 1"),
        0
    );
    assert_eq!(
        int(&edited, "SELECT count(*) FROM edge WHERE spoke_id = 1"),
        0
    );
}

#[test]
fn truncate_works_when_a_skipped_table_references_a_seeded_one() {
    // Defect 6: every --truncate failed, advising to skip.
    let c = cluster();
    let url = database(
        &c,
        "d6",
        "CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE audit (id serial PRIMARY KEY, parent_id int REFERENCES parent);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    std::fs::write(&spec, skip_table(&text, "public.audit")).unwrap();
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    // An empty table the CASCADE reaches loses nothing: no question asked.
    let r = seed(&url, &spec, &["--truncate"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    sql(
        &url,
        "INSERT INTO audit (parent_id) SELECT min(id) FROM parent",
    );
    // Rows in it: --truncate would empty them too, so it needs --yes.
    refused_without_yes(&url, &spec);
    let r = seed(&url, &spec, &["--truncate", "--yes"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(int(&url, "SELECT count(*) FROM parent") > 0);
    assert_eq!(int(&url, "SELECT count(*) FROM audit"), 0);
}

/// `--truncate` without `--yes` (and no terminal) refuses in one line
/// naming public.audit, and changes nothing.
fn refused_without_yes(url: &str, spec: &std::path::Path) {
    let before = value(url, "SELECT count(*) || ':' || max(name) FROM parent");
    let err =
        seed(url, spec, &["--truncate"]).fails_with(2, "--truncate would also empty public.audit");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(
        value(url, "SELECT count(*) || ':' || max(name) FROM parent"),
        before
    );
    assert_eq!(int(url, "SELECT count(*) FROM audit"), 1);
}

#[test]
fn tables_holding_rows_are_kept_and_used_as_parents() {
    // Defect 7: a framework's own rows (content types) refused or overwritten.
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "d7",
        "CREATE TABLE content_type (id serial PRIMARY KEY, model text NOT NULL UNIQUE);
         INSERT INTO content_type (model) VALUES ('user'), ('group'), ('site');
         CREATE TABLE permission (id serial PRIMARY KEY, codename text NOT NULL,
            content_type_id int NOT NULL REFERENCES content_type);",
    );
    assert!(text.contains("holds rows already"), "{text}");
    assert_eq!(
        value(
            &url,
            "SELECT string_agg(model, ',' ORDER BY id) FROM content_type"
        ),
        "user,group,site"
    );
}

#[test]
fn date_keys_singletons_and_trigger_filled_tables_are_guessed_right() {
    // Defect 8.
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "d8",
        "CREATE TABLE site (id serial PRIMARY KEY, name varchar(20) NOT NULL);
         CREATE UNIQUE INDEX site_one_row ON site ((true));
         CREATE TABLE post (id serial PRIMARY KEY, title varchar(12) NOT NULL);
         CREATE TABLE post_aggregates (post_id int PRIMARY KEY REFERENCES post, score int NOT NULL DEFAULT 0);
         CREATE FUNCTION post_added() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN PERFORM add_aggregate(NEW.id); RETURN NEW; END$$;
         CREATE FUNCTION add_aggregate(p int) RETURNS void LANGUAGE plpgsql AS
           $$BEGIN INSERT INTO post_aggregates (post_id) VALUES (p); END$$;
         CREATE TRIGGER post_added AFTER INSERT ON post FOR EACH ROW EXECUTE FUNCTION post_added();
         CREATE TABLE daily (day date PRIMARY KEY, visits int NOT NULL);",
    );
    assert!(text.contains("columns.day = \"date\""), "{text}");
    assert!(
        text.contains("filled by a trigger on public.post"),
        "{text}"
    );
    assert_eq!(int(&url, "SELECT count(*) FROM site"), 1);
    assert_eq!(
        int(&url, "SELECT count(*) FROM post"),
        int(&url, "SELECT count(*) FROM post_aggregates")
    );
}

#[test]
fn sql_on_a_unique_column_is_accepted_and_injection_is_refused() {
    // Defect 10 (sql refused on UNIQUE columns) and issue 14 item 13.
    let c = cluster();
    let url = database(
        &c,
        "d10",
        "CREATE TABLE item (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
         CREATE TABLE canary (x int);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.toml");
    let write = |code: &str| {
        std::fs::write(
            &spec,
            format!("version = 1\n[tables.\"public.canary\"]\nskip = true\n[tables.\"public.item\"]\nrows = 20\ncolumns.code = {{ sql = {code:?} }}\n"),
        )
        .unwrap();
    };
    write("md5(random()::text)");
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    assert_eq!(int(&url, "SELECT count(DISTINCT code) FROM item"), 20);

    write("1) FROM ward_stage; DROP TABLE canary; SELECT (1");
    let err = seed(&url, &spec, &["--truncate"]).fails_with(2, "sql must be one SQL expression");
    assert!(err.contains("s.toml:6: public.item.code"), "{err}");
    assert_eq!(
        int(&url, "SELECT count(*) FROM canary"),
        0,
        "canary still exists"
    );
}

#[test]
fn absurd_job_counts_are_refused() {
    // Issue 14 item 16: -j 100000 started 100,000 threads.
    let c = cluster();
    let url = database(&c, "j", "CREATE TABLE t (id int PRIMARY KEY);");
    ward()
        .db(&url)
        .args(["seed", "-j", "100000"])
        .run()
        .fails_with(2, "--jobs 100000 is more than");
}

#[test]
fn validation_reports_every_error_one_line_each() {
    // Defect 10: validation stopped at the first error.
    let c = cluster();
    let url = database(
        &c,
        "all_errors",
        "CREATE TABLE a (id int PRIMARY KEY, n int NOT NULL, t text NOT NULL);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.toml");
    // Two mistakes the reader finds...
    std::fs::write(
        &spec,
        "version = 1\n[tables.\"public.a\"]\nrows = 5\ncolumns.id = { gen = \"int\", bogus = 1 }\ncolumns.n = { null_ratio = 2 }\n",
    )
    .unwrap();
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    let err = r.stderr();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains("s.toml:4: public.a.id: unknown key \"bogus\""),
        "{err}"
    );
    assert!(
        lines[1].contains("s.toml:5: public.a.n: null_ratio must be between 0 and 1"),
        "{err}"
    );
    // ...and three the schema shows.
    std::fs::write(
        &spec,
        "version = 1\n[tables.\"public.nope\"]\nrows = 1\n[tables.\"public.a\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.n = \"lorem.word\"\ncolumns.t = \"ref\"\n",
    )
    .unwrap();
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    let err = r.stderr();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("s.toml:2: public.nope: no such table"),
        "{err}"
    );
    assert!(
        lines[1].contains("s.toml:7: public.a.n: the generator makes"),
        "{err}"
    );
    assert!(
        lines[2]
            .contains("s.toml:8: public.a.t: gen = \"ref\" but the column is not a foreign key"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("error: ") && l.contains(" — ")),
        "{err}"
    );
    assert_eq!(int(&url, "SELECT count(*) FROM a"), 0, "nothing written");
}

#[test]
fn defaults_per_type_apply_and_columns_override_them() {
    // Defect 10: per-type defaults (`[defaults]`), per-column settings win.
    let c = cluster();
    let url = database(
        &c,
        "defaults",
        "CREATE TABLE e (id int PRIMARY KEY, due timestamptz NOT NULL, seen timestamptz,
                         done timestamptz, note varchar(20));",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (_, guessed) = guess(&url, tmp.path());
    assert!(
        guessed.contains("# [defaults]\n# timestamptz = { null_ratio = 0.1 }"),
        "{guessed}"
    );
    let spec = tmp.path().join("d.toml");
    std::fs::write(
        &spec,
        "version = 1\n[defaults]\ntimestamptz = { null_ratio = 0.5 }\nvarchar = { null_ratio = 1 }\n\
         [tables.\"public.e\"]\nrows = 400\ncolumns.id = \"sequence\"\ncolumns.due = \"timestamp\"\n\
         columns.seen = \"timestamp\"\ncolumns.done = { gen = \"timestamp\", null_ratio = 0 }\ncolumns.note = \"lorem.word\"\n",
    )
    .unwrap();
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let seen_nulls = int(&url, "SELECT count(*) FROM e WHERE seen IS NULL");
    assert!(
        (120..=280).contains(&seen_nulls),
        "about half of 400: {seen_nulls}"
    );
    assert_eq!(
        int(&url, "SELECT count(*) FROM e WHERE done IS NULL"),
        0,
        "the column's own null_ratio wins"
    );
    assert_eq!(
        int(&url, "SELECT count(*) FROM e WHERE note IS NOT NULL"),
        0,
        "varchar(20) is a varchar"
    );
    // A generator is per column, never a default.
    std::fs::write(
        &spec,
        "version = 1\n[defaults]\ntext = { gen = \"lorem.word\" }\n",
    )
    .unwrap();
    seed(&url, &spec, &["--truncate"])
        .fails_with(2, "d.toml:3: defaults.text: defaults hold settings");
}

#[test]
fn sql_making_a_duplicate_in_a_unique_column_is_a_spec_line_error() {
    // Defect 10: sql = … on a UNIQUE column is accepted; a duplicate it makes
    // is the spec's mistake, named at the column's line.
    let c = cluster();
    let url = database(
        &c,
        "sql_unique",
        "CREATE TABLE item (id serial PRIMARY KEY, code text NOT NULL UNIQUE, label text);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.toml");
    let write = |code: &str| {
        std::fs::write(
            &spec,
            format!("version = 1\n[tables.\"public.item\"]\nrows = 20\ncolumns.label = \"lorem.word\"\ncolumns.code = {{ sql = {code:?} }}\n"),
        )
        .unwrap();
    };
    write("'item-' || (ward_row % 3)");
    let err = seed(&url, &spec, &[]).fails_with(
        2,
        "its sql expression made a duplicate value for UNIQUE (code)",
    );
    assert!(err.contains("s.toml:5: public.item.code"), "{err}");
    assert_eq!(
        int(&url, "SELECT count(*) FROM item"),
        0,
        "nothing half-written"
    );
    write("'item-' || ward_row");
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    assert_eq!(int(&url, "SELECT count(DISTINCT code) FROM item"), 20);
    assert_eq!(
        int(&url, "SELECT count(*) FROM item WHERE code = 'item-19'"),
        1
    );
}

#[test]
fn phones_are_country_neutral_fictional_numbers_unless_the_schema_says_uk() {
    // Issue 10: UK numbers in a non-UK app failed its validation.
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "phones",
        "CREATE TABLE contact (id serial PRIMARY KEY, phone text NOT NULL UNIQUE, mobile varchar(12));
         CREATE TABLE uk_office (id serial PRIMARY KEY, telephone text NOT NULL);
         CREATE TABLE site (id serial PRIMARY KEY, country char(2) NOT NULL DEFAULT 'GB', phone text);",
    );
    assert!(text.contains("columns.phone = \"phone.intl\""), "{text}");
    assert!(text.contains("columns.telephone = \"phone.uk\""), "{text}");
    // NANPA's fictional 555-0100…0199, in full or compact when the column is short.
    assert_eq!(
        int(
            &url,
            r"SELECT count(*) FROM contact WHERE phone !~ '^\+1 \d{3} 555 01\d{2}$'"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            r"SELECT count(*) FROM contact WHERE mobile !~ '^\+1\d{3}55501\d{2}$'"
        ),
        0
    );
    assert_eq!(int(&url, "SELECT count(DISTINCT phone) FROM contact"), 100);
    assert_eq!(
        int(
            &url,
            r"SELECT count(*) FROM uk_office WHERE telephone ~ '^\+1'"
        ),
        0
    );
    assert_eq!(
        int(&url, r"SELECT count(*) FROM site WHERE phone ~ '^\+1'"),
        0
    );
}

#[test]
fn a_join_table_fanned_out_beside_a_kept_parent_gets_no_more_children_than_it_holds() {
    // Found on wagtail/allauth: auth_user_groups fanned out from auth_user
    // (max 3) with unique (user_id, group_id), auth_group kept with 2 rows:
    // "needs 3 different rows of public.auth_group" until the spec was edited.
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "kept_pair",
        "CREATE TABLE grp (id int PRIMARY KEY); INSERT INTO grp VALUES (1), (2);
         CREATE TABLE usr (id int PRIMARY KEY);
         CREATE TABLE usr_grp (id serial PRIMARY KEY, usr_id int NOT NULL REFERENCES usr,
                               grp_id int NOT NULL REFERENCES grp, UNIQUE (usr_id, grp_id));",
    );
    assert!(
        text.contains("rows = { per = \"public.usr\", min = 0, max = 2 }"),
        "{text}"
    );
    assert!(int(&url, "SELECT count(*) FROM usr_grp") > 0);
}

#[test]
fn a_table_one_to_one_with_a_kept_parent_gets_no_more_rows_than_it_holds() {
    // Found on wagtail: wagtailcore_workflowcontenttype (primary key =
    // content_type_id) guessed 100 rows while django_content_type held 49.
    let c = cluster();
    let (url, text) = seeds_unedited(
        &c,
        "kept_one",
        "CREATE TABLE kind (id int PRIMARY KEY); INSERT INTO kind SELECT generate_series(1, 7);
         CREATE TABLE flow (id int PRIMARY KEY); INSERT INTO flow VALUES (1);
         CREATE TABLE flow_kind (kind_id int PRIMARY KEY REFERENCES kind, flow_id int NOT NULL REFERENCES flow);",
    );
    assert!(
        text.contains("rows = 7  # one row per row of public.kind"),
        "{text}"
    );
    assert_eq!(int(&url, "SELECT count(*) FROM flow_kind"), 7);
}

#[test]
fn a_not_null_search_vector_is_not_empty() {
    // Found on wagtail: wagtailsearch_indexentry's tsvector columns were '' —
    // Django's SearchVectorField (blank=False) rejects an empty vector.
    let c = cluster();
    let (url, _) = seeds_unedited(
        &c,
        "tsv",
        "CREATE TABLE doc (id int PRIMARY KEY, body tsvector NOT NULL);",
    );
    assert_eq!(
        int(&url, "SELECT count(*) FROM doc WHERE body = ''::tsvector"),
        0
    );
}

#[test]
fn unique_integers_fill_a_spec_scaled_past_a_thousand_rows() {
    // Found scaling crates.io's guessed spec: `teams.github_id` and
    // `users.gh_id` (UNIQUE integers) were guessed `int` (1,001 values),
    // so raising the row counts made the spec fail with "cannot guarantee
    // UNIQUE" (`gh_id`'s is a partial index). A CHECK upper bound still
    // keeps `int` inside its range.
    let c = cluster();
    let url = database(
        &c,
        "scaled",
        "CREATE TABLE teams (id serial PRIMARY KEY, github_id int NOT NULL UNIQUE, name text NOT NULL);
         CREATE TABLE users (id serial PRIMARY KEY, gh_id int NOT NULL, login text);
         CREATE UNIQUE INDEX users_gh_id ON users (gh_id) WHERE gh_id > 0;
         CREATE TABLE seats (id serial PRIMARY KEY, num smallint NOT NULL UNIQUE CHECK (num BETWEEN 1 AND 500));",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    assert!(text.contains("columns.github_id = \"sequence\""), "{text}");
    assert!(text.contains("columns.gh_id = \"sequence\""), "{text}");
    assert!(text.contains("columns.num = \"int\""), "{text}");
    let mut table = String::new();
    let scaled: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("[tables.") {
                table = l.to_string();
            }
            match (l.starts_with("rows = "), table.contains("seats")) {
                (true, true) => "rows = 500".to_string(),
                (true, false) => "rows = 5000".to_string(),
                _ => l.to_string(),
            }
        })
        .collect();
    std::fs::write(&spec, scaled.join("\n") + "\n").unwrap();
    assert_eq!(seed(&url, &spec, &[]).code(), 0);
    for (table, column, rows) in [
        ("teams", "github_id", 5000),
        ("users", "gh_id", 5000),
        ("seats", "num", 500),
    ] {
        assert_eq!(
            int(
                &url,
                &format!("SELECT count(DISTINCT {column}) FROM {table}")
            ),
            rows,
            "{table}.{column}"
        );
    }
}

#[test]
fn django_cms_shapes_a_unique_twin_and_a_draft_flag_seed_unedited() {
    // django-cms's cms_page: publisher_public_id is a nullable one-to-one key
    // to its own table (every row drew a random earlier row: duplicate key),
    // and UNIQUE (node_id, publisher_is_draft) allows two pages per node
    // (the guess fanned out three: refused by --spec).
    let c = cluster();
    let (url, spec) = seeds_unedited(
        &c,
        "cms",
        "CREATE TABLE node (id serial PRIMARY KEY);
         CREATE TYPE stage AS ENUM ('draft', 'review', 'live');
         CREATE TABLE page (id serial PRIMARY KEY,
           node_id int NOT NULL REFERENCES node, is_draft bool NOT NULL,
           twin_id int UNIQUE REFERENCES page (id),
           UNIQUE (node_id, is_draft));
         CREATE TABLE version (id serial PRIMARY KEY,
           page_id int NOT NULL REFERENCES page, stage stage NOT NULL,
           self_id int NOT NULL UNIQUE REFERENCES version (id),
           UNIQUE (page_id, stage));",
    );
    assert!(spec.contains("max = 2"), "{spec}");
    assert!(int(&url, "SELECT count(twin_id) FROM page") > 1);
    assert_eq!(
        int(&url, "SELECT count(*) FROM page WHERE twin_id >= id"),
        0,
        "a twin is an earlier row"
    );
    assert!(int(&url, "SELECT count(*) FROM version") > 0);
    assert!(
        int(
            &url,
            "SELECT max(n) FROM (SELECT count(*) n FROM page GROUP BY node_id) x"
        ) <= 2
    );
}

#[test]
fn a_misnamed_column_is_one_error_not_one_more_per_child_table() {
    let c = cluster();
    let url = database(
        &c,
        "misnamed",
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE ch (id int PRIMARY KEY, p_id int NOT NULL REFERENCES p);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.toml");
    std::fs::write(
        &spec,
        "version = 1\n[tables.\"public.p\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.idd = \"int\"\n\n[tables.\"public.ch\"]\nrows = { per = \"public.p\", min = 0, max = 3 }\ncolumns.id = \"sequence\"\ncolumns.p_id = \"ref\"\n",
    )
    .unwrap();
    let err = seed(&url, &spec, &[]).fails_with(2, "no such column");
    assert!(err.contains("s.toml:5: public.p.idd"), "{err}");
    assert!(!err.contains("is skipped"), "{err}");
}

#[test]
fn subtypes_of_one_parent_never_share_a_parent_row() {
    // Django's multi-table inheritance: a row of the parent is of one
    // subtype. Drawn independently, django-cms's PlaceholderReference and
    // AliasPluginModel shared plugins, and its data migration 0027 failed
    // on data no real instance holds.
    let c = cluster();
    let (url, _) = seeds_unedited(
        &c,
        "mti",
        "CREATE TABLE plugin (id serial PRIMARY KEY);
         CREATE TABLE alias (plugin_ptr_id int PRIMARY KEY REFERENCES plugin,
           target_id int NOT NULL REFERENCES plugin);
         CREATE TABLE reference (plugin_ptr_id int PRIMARY KEY REFERENCES plugin, name text NOT NULL);
         CREATE TABLE text_plugin (plugin_ptr_id int PRIMARY KEY REFERENCES plugin, body text NOT NULL);",
    );
    let shared = int(
        &url,
        "SELECT count(*) FROM (SELECT plugin_ptr_id FROM
           (SELECT plugin_ptr_id FROM alias UNION ALL
            SELECT plugin_ptr_id FROM reference UNION ALL
            SELECT plugin_ptr_id FROM text_plugin) s
           GROUP BY plugin_ptr_id HAVING count(*) > 1) shared",
    );
    assert_eq!(shared, 0, "a plugin row is of one subtype");
}

#[test]
fn short_text_keys_get_codes_that_stay_unique() {
    // django-oscar's address_country: iso_3166_1_a2 varchar(2) PRIMARY KEY
    // was guessed `lorem.word`, whose " N" suffix was cut to fit: duplicate
    // keys at the 10th row.
    let c = cluster();
    let (url, spec) = seeds_unedited(
        &c,
        "codes",
        "CREATE TABLE country (iso_3166_1_a2 varchar(2) PRIMARY KEY,
           iso_3166_1_a3 varchar(3) UNIQUE, num varchar(4) UNIQUE,
           w varchar(5) UNIQUE, tiny char(1));",
    );
    assert!(
        spec.contains("columns.iso_3166_1_a2 = \"text.code\""),
        "{spec}"
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM country WHERE iso_3166_1_a2 !~ '^[A-Z]{2}$'"
        ),
        0
    );
    assert_eq!(
        int(&url, "SELECT count(*) FROM country WHERE w LIKE ' %'"),
        0
    );
    // A word generator on a short unique column is refused up front, not
    // cut into duplicates at load time.
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s.toml");
    std::fs::write(
        &s,
        "version = 1\n[tables.\"public.country\"]\nrows = 100\ncolumns.iso_3166_1_a2 = \"lorem.word\"\n",
    )
    .unwrap();
    seed(&url, &s, &["--truncate"]).fails_with(2, "cannot guarantee UNIQUE");
}
