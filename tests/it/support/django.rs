//! Support for the Django tests: the test Python (a venv made by
//! `.ci/python-venv.sh`, or $WARD_TEST_PYTHON), a private copy of the fixture
//! project `tests/fixtures/django_app`, and `manage.py` runs against a
//! database. Missing Python or Django fails the test, naming the script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with the fixture's Django and psycopg.
pub fn python() -> PathBuf {
    let p = match std::env::var_os("WARD_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python"),
    };
    let ok = Command::new(&p)
        .args(["-c", "import django, psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Python with Django and psycopg at {} — run `bash .ci/python-venv.sh` (or set WARD_TEST_PYTHON)",
        p.display()
    );
    p
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "__pycache__" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// A private copy of the fixture project (manage.py at its root).
pub fn project() -> tempfile::TempDir {
    fixture_project("django_app")
}

/// A private copy of the fixture project `tests/fixtures/NAME`.
pub fn fixture_project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        dir.path(),
    );
    dir
}

/// `ward seed --init-spec SPEC --django` for the project `proj` on `url`.
pub fn init_spec(url: &str, proj: &Path, spec: &Path) {
    crate::support::ward()
        .db(url)
        .args(["seed", "--init-spec"])
        .arg_str(spec.to_str().unwrap())
        .args(["--django", "--django-project"])
        .arg_str(proj.to_str().unwrap())
        .arg_str("--python")
        .arg_str(python().to_str().unwrap())
        .ok();
}

/// [`init_spec`] into `spec`, then `ward seed --spec` with it as written.
pub fn seed_guessed(url: &str, proj: &Path, spec: &Path) {
    init_spec(url, proj, spec);
    crate::support::ward()
        .db(url)
        .args(["seed", "--spec"])
        .arg_str(spec.to_str().unwrap())
        .ok();
}

/// `python manage.py ARGS` in `dir` against `url`; its stdout. Panics with the output on failure.
pub fn manage(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("manage.py")
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "manage.py {:?} failed:\n{}\n{}",
        args.first(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `full_clean()` on up to `per_model` rows of every model; returns
/// (rows checked per model, every validation error as "label pk: message").
pub fn full_clean(dir: &Path, url: &str, per_model: usize) -> (Vec<(String, u64)>, Vec<String>) {
    let script = format!(
        r#"
import json
from django.apps import apps
from django.core.exceptions import ValidationError
checked, errors = [], []
for m in apps.get_models():
    n = 0
    for obj in m._default_manager.order_by("pk")[:{per_model}]:
        n += 1
        try:
            obj.full_clean()
        except ValidationError as e:
            errors.append(f"{{m._meta.label}} {{obj.pk}}: {{e.message_dict}}")
        except Exception as e:
            errors.append(f"{{m._meta.label}} {{obj.pk}}: {{type(e).__name__}}: {{e}}")
    checked.append([m._meta.label, n])
print(json.dumps({{"checked": checked, "errors": errors}}))
"#
    );
    let out = manage(dir, url, &["shell", "-c", &script]);
    let v: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    let checked = v["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_string(), c[1].as_u64().unwrap()))
        .collect();
    let errors = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    (checked, errors)
}

/// A database at records.0003_encounter with seeded rows (fax numbers included).
pub fn early_database(c: &crate::support::Cluster, proj: &std::path::Path) -> String {
    crate::support::sql(&c.url("postgres"), "CREATE DATABASE prod");
    let url = c.url("prod");
    manage(
        proj,
        &url,
        &["migrate", "records", "0003_encounter", "--no-input"],
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    crate::support::ward()
        .db(&url)
        .args(["seed", "--init-spec"])
        .arg_str(spec.to_str().unwrap())
        .args(["--django-project"])
        .arg_str(proj.to_str().unwrap())
        .args(["--python"])
        .arg_str(python().to_str().unwrap())
        .ok();
    crate::support::ward()
        .db(&url)
        .args(["seed", "--spec"])
        .arg_str(spec.to_str().unwrap())
        .ok();
    assert!(crate::support::int(&url, "SELECT count(*) FROM records_patient WHERE fax <> ''") > 0);
    url
}

pub fn check(proj: &std::path::Path, url: &str, format: &str) -> crate::support::Run {
    check_with(proj, url, format, &[])
}

/// `check` with more arguments.
pub fn check_with(
    proj: &std::path::Path,
    url: &str,
    format: &str,
    extra: &[&str],
) -> crate::support::Run {
    crate::support::ward()
        .args(["check", "--runner", "django", "--against"])
        .arg_str(url)
        .args(["--django-project"])
        .arg_str(proj.to_str().unwrap())
        .args(["--python"])
        .arg_str(python().to_str().unwrap())
        .args(["--format", format])
        .args(extra)
        .run()
}
