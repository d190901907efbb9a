//! The bridge to a Django project: ward never re-implements Django, it asks
//! the project's own Django. This module finds the project (`manage.py`) and
//! the Python that runs it, runs `python manage.py …` with DATABASE_URL set
//! to the database ward works on, with a timeout, and turns a failure into one
//! clear line plus the command's last lines. `seed --init-spec --django`
//! reads the models through it (`models`), `check --runner django` lists and
//! applies migrations through it (see `check::django`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::error::UsageError;

/// The script `models` runs in `manage.py shell`.
const MODELS_SCRIPT: &str = include_str!("django_models.py");

/// How long one `manage.py` command may take before ward gives up on it.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How many of a failed command's last output lines an error shows.
const TAIL_LINES: usize = 8;

/// A Django project: the directory holding `manage.py`, and its Python.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub dir: PathBuf,
    pub python: PathBuf,
}

/// A finished `manage.py` command (secrets redacted from its output).
#[derive(Debug)]
pub(crate) struct Finished {
    /// The command as shown in messages.
    pub shown: String,
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// stdout as printed, for ward's own scripts' JSON only (never shown):
    /// redaction would break a document whose keys merely contain "token".
    document: String,
}

impl Finished {
    /// The line that says what went wrong.
    pub(crate) fn error_line(&self) -> String {
        last_error_line(&self.stderr, &self.stdout)
    }
}

/// Whether `dir` holds a Django project (a `manage.py`).
pub(crate) fn is_project(dir: &Path) -> bool {
    dir.join("manage.py").is_file()
}

impl Project {
    /// The project in `dir` (default: the working directory), run by `python`
    /// (default: `WARD_PYTHON`, then the project's `.venv/bin/python`, then `python3`).
    pub(crate) fn locate(dir: Option<&Path>, python: Option<&Path>) -> Result<Project> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_dir()?,
        };
        if !is_project(&dir) {
            return Err(UsageError(format!(
                "{} has no manage.py — pass --django-project DIR (the directory of manage.py)",
                dir.display()
            ))
            .into());
        }
        let dir = dir.canonicalize().unwrap_or(dir);
        let venv = dir.join(".venv/bin/python");
        let python = match (python, std::env::var_os("WARD_PYTHON")) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
            _ if venv.is_file() => venv,
            _ => PathBuf::from("python3"),
        };
        Ok(Project { dir, python })
    }

    /// Runs `python manage.py ARGS` in the project with DATABASE_URL set to
    /// `database_url`, with a timeout; a failing command is a [`Finished`]
    /// with `success: false`, not an error.
    pub(crate) async fn run(&self, args: &[&str], database_url: &str) -> Result<Finished> {
        let shown = format!("python manage.py {}", shown_args(args));
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.arg("manage.py")
            .args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", database_url)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            UsageError(format!(
                "cannot run {} ({e}) — pass --python PATH (or set WARD_PYTHON) to the Python that has the project's Django",
                self.python.display()
            ))
        })?;
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
            Ok(out) => out?,
            Err(_) => {
                return Err(UsageError(format!(
                    "`{shown}` did not finish within {} s in {} — it was stopped; run it by hand to see where it waits",
                    COMMAND_TIMEOUT.as_secs(),
                    self.dir.display()
                ))
                .into());
            }
        };
        let document = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(Finished {
            shown,
            success: out.status.success(),
            code: out.status.code(),
            stdout: crate::redact::text(&document),
            document,
            stderr: crate::redact::text(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// Like [`Project::run`], and a failing command is an error: one line
    /// saying what failed plus the command's last lines.
    pub(crate) async fn manage(&self, args: &[&str], database_url: &str) -> Result<Finished> {
        let out = self.run(args, database_url).await?;
        if !out.success {
            return Err(UsageError(format!(
                "`{}` failed with {} in {}: {}\n{}",
                out.shown,
                out.code
                    .map_or("a signal".to_string(), |c| format!("status {c}")),
                self.dir.display(),
                out.error_line(),
                tail(&out.stderr, &out.stdout, TAIL_LINES)
            ))
            .into());
        }
        Ok(out)
    }

    /// The project's models as its own Django describes them.
    pub(crate) async fn models(&self, database_url: &str) -> Result<Models> {
        self.shell_json(MODELS_SCRIPT, database_url).await
    }

    /// Runs `script` in `manage.py shell` and reads the JSON document it prints last.
    pub(crate) async fn shell_json<T: serde::de::DeserializeOwned>(
        &self,
        script: &str,
        database_url: &str,
    ) -> Result<T> {
        let out = self.manage(&["shell", "-c", script], database_url).await?;
        // The document is the last line that parses: settings may print before it.
        out.document
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<T>(l.trim()).ok())
            .ok_or_else(|| {
                UsageError(format!(
                    "`python manage.py shell` in {} printed nothing ward can read; its last lines:\n{}",
                    self.dir.display(),
                    tail(&out.stderr, &out.stdout, TAIL_LINES)
                ))
                .into()
            })
    }
}

/// The database as a `postgres://` URL (Django's settings parse only that form).
pub(crate) fn database_url(url: &str) -> Result<String> {
    crate::pg::urls::postgres_scheme_url(url)
}

/// The arguments as shown in messages (scripts are not shown).
fn shown_args(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.contains('\n') {
                "<ward's script>"
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line that says what went wrong: the last line that looks like an
/// exception or an error, else the last non-empty line.
pub(crate) fn last_error_line(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains("Error") || l.contains("Exception") || l.starts_with("error"))
        .or(lines.last())
        .copied()
        .unwrap_or("(no output)");
    shorten(line, 300)
}

/// The last `n` lines of the command's output, indented, each shortened.
pub(crate) fn tail(stderr: &str, stdout: &str, n: usize) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  | {}", shorten(l, 300)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most `max` characters, with "…" when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Every model of the project (`django_models.py`'s output).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Models {
    pub django: String,
    pub models: Vec<Model>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Model {
    pub label: String,
    pub db_table: String,
    pub fields: Vec<Field>,
}

/// One concrete field, as the model declares it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Field {
    pub name: String,
    pub column: String,
    #[serde(rename = "type")]
    pub internal_type: String,
    pub null: bool,
    pub blank: bool,
    pub relation: bool,
    pub primary_key: bool,
    /// The stored values of `choices`, as text.
    pub choices: Option<Vec<String>>,
    /// Bounds from every Min/MaxValueValidator (the backend's included).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Whether the model itself declares a Min/MaxValueValidator.
    pub bounded: bool,
    /// Values generated for a RegexValidator, each checked by every validator of the field.
    pub regex: Option<Vec<String>>,
    /// A RegexValidator pattern ward could not generate values for.
    pub regex_unsupported: Option<String>,
    /// email, url or slug.
    pub kind: Option<String>,
    /// A JSONField's default, as JSON.
    pub json_default: Option<String>,
    /// A relation's target: the related model's table and column.
    #[serde(default)]
    pub related_table: Option<String>,
    #[serde(default)]
    pub related_column: Option<String>,
    /// `ForeignKey(db_constraint=…)`: `false` when the database has no key for it.
    #[serde(default)]
    pub db_constraint: Option<bool>,
}

impl Models {
    /// The model stored in `table` (Django's `db_table`).
    pub(crate) fn by_table(&self, table: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.db_table == table)
    }
}

impl Model {
    pub(crate) fn field(&self, column: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.column == column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_is_the_exception_and_long_lines_are_cut() {
        let err = "Traceback (most recent call last):\n  File \"x\", line 1\ndjango.db.utils.ProgrammingError: relation \"x\" does not exist\n";
        assert_eq!(
            last_error_line(err, ""),
            "django.db.utils.ProgrammingError: relation \"x\" does not exist"
        );
        let long = "E".repeat(7000);
        assert_eq!(last_error_line(&long, "").chars().count(), 300);
        assert!(tail(&long, "", 3).chars().count() < 320);
    }
}
