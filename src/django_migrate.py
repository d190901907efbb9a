# Embedded in ward (src/check/django.rs) and run as `python manage.py shell -c
# <this>`, after a first line that sets WARD (a JSON document): runs
# `migrate APP TARGET` for each target in turn, as `manage.py migrate` would,
# and prints one JSON document with every migration applied or unapplied and
# every SQL statement its operations executed (with the operation's index,
# its time, the rows it touched, and its error), so that findings inside a
# RunPython point at the migration and the statement. With "tz", the
# session TimeZone and the process's local zone are another zone (the
# time-zone variant of a check). Stops at the first failure; never raises:
# the traceback is in the document's "output". Refuses to touch any database
# but the one ward named (WARD["database"]). Statements are recorded with
# their placeholders, never their parameters, grouped and bounded.
import json
import os
import time
import traceback

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ward = json.loads(WARD)  # noqa: F821 (set by ward on the first line)


def refuse_other_database():
    """ward migrates only its own scratch clone: a settings.py that ignores
    DATABASE_URL would otherwise migrate (and migrate back) another database."""
    with connection.cursor() as c:
        c.execute("SELECT current_database()")
        name = c.fetchone()[0]
    if name != ward["database"]:
        print(json.dumps({"refused": name}))
        raise SystemExit(0)



tz = ward.get("tz")
if tz:
    os.environ["TZ"] = tz
    time.tzset()
    from django.utils import timezone

    # Django's default zone (localtime(), naive datetimes) and, with USE_TZ,
    # the zone Django sets on its database session.
    settings.TIME_ZONE = tz
    timezone.get_default_timezone.cache_clear()
    if settings.USE_TZ:
        connection.settings_dict["TIME_ZONE"] = tz
    connection.close()
    for cached in ("timezone", "timezone_name"):
        connection.__dict__.pop(cached, None)

runs = []
current = {"run": None, "op": None}
MAX_SQL = 4000
# Distinct statements kept per migration; the rest are only counted.
MAX_STATEMENTS = 200


def wrapper(execute, sql, params, many, context):
    run = current["run"]
    # Django's own history row is bookkeeping, not the migration's work.
    if run is None or "django_migrations" in sql:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    rows, error, sqlstate = None, None, None
    try:
        result = execute(sql, params, many, context)
        count = getattr(context.get("cursor"), "rowcount", -1)
        rows = count if isinstance(count, int) and count >= 0 else None
        return result
    except BaseException as e:
        text = str(e).strip()
        error = text.splitlines()[0] if text else type(e).__name__
        cause = e.__cause__ or e
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        raise
    finally:
        # The SQL with its placeholders, never its parameters (they hold the
        # rows' values); a loop of .save() is one entry with a count.
        key = (current["op"], str(sql)[:MAX_SQL])
        entry = run["index"].get(key)
        if entry is None and (len(run["statements"]) < MAX_STATEMENTS or error):
            entry = {"op": key[0], "sql": key[1], "count": 0, "ms": 0.0, "rows": None, "error": None, "sqlstate": None}
            run["statements"].append(entry)
            run["index"][key] = entry
        if entry is None:
            run["more"] += 1
        else:
            entry["count"] += 1
            entry["ms"] += (time.perf_counter() - started) * 1e3
            if rows is not None:
                entry["rows"] = (entry["rows"] or 0) + rows
            if error:
                entry["error"], entry["sqlstate"] = error, sqlstate


def traced(op, index, name):
    original = getattr(op, name)

    def run(*args, **kwargs):
        current["op"] = index
        try:
            return original(*args, **kwargs)
        finally:
            current["op"] = None

    setattr(op, name, run)


def observed(original, direction, method):
    def step(self, state, migration, *args, **kwargs):
        run = {
            "version": f"{migration.app_label}.{migration.name}",
            "direction": direction,
            "ms": 0.0,
            "statements": [],
            "more": 0,
            "error": None,
            "index": {},
        }
        runs.append(run)
        for i, op in enumerate(migration.operations):
            traced(op, i, method)
        current["run"] = run
        started = time.perf_counter()
        try:
            return original(self, state, migration, *args, **kwargs)
        except Exception as e:
            run["error"] = {"type": type(e).__name__, "message": str(e)}
            raise
        finally:
            run["ms"] = (time.perf_counter() - started) * 1e3
            current["run"] = None

    return step


MigrationExecutor.apply_migration = observed(MigrationExecutor.apply_migration, "up", "database_forwards")
MigrationExecutor.unapply_migration = observed(
    MigrationExecutor.unapply_migration, "down", "database_backwards"
)

refuse_other_database()
output = None
with connection.execute_wrapper(wrapper):
    for app, target in ward["targets"]:
        try:
            call_command("migrate", app, target, interactive=False, verbosity=0)
        except BaseException:  # SystemExit in a RunPython too
            output = traceback.format_exc()
            break
for run in runs:
    del run["index"]
print(json.dumps({"runs": runs, "output": output}))
