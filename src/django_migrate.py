# Embedded in ward (src/check/django.rs) and run as `python manage.py shell -c
# <this>`, after a first line that sets WARD (a JSON document): runs
# `migrate APP TARGET` for each target in turn, as `manage.py migrate` would,
# and prints one JSON document with every migration applied or unapplied and
# every SQL statement its operations executed (with the operation's index,
# its time, the rows it touched, and its error), so that findings inside a
# RunPython point at the migration and the statement. With "tz", the
# session TimeZone and the process's local zone are another zone (the
# time-zone variant of a check). Stops at the first failure; never raises:
# the traceback is in the document's "output".
import json
import os
import time
import traceback

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ward = json.loads(WARD)  # noqa: F821 (set by ward on the first line)

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


def shown(cursor, sql, params, many):
    if not many:
        try:
            return connection.ops.last_executed_query(cursor, sql, params)
        except Exception:
            pass
    return sql if not params else f"{sql}  -- params: {params!r}"


def wrapper(execute, sql, params, many, context):
    run = current["run"]
    # Django's own history row is bookkeeping, not the migration's work.
    if run is None or "django_migrations" in sql:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    entry = {"op": current["op"], "sql": "", "ms": 0.0, "rows": None, "error": None, "sqlstate": None}
    try:
        result = execute(sql, params, many, context)
        rows = getattr(context.get("cursor"), "rowcount", -1)
        entry["rows"] = rows if isinstance(rows, int) and rows >= 0 else None
        return result
    except Exception as e:
        entry["error"] = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        cause = e.__cause__ or e
        entry["sqlstate"] = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        raise
    finally:
        entry["ms"] = (time.perf_counter() - started) * 1e3
        entry["sql"] = shown(context.get("cursor"), sql, params, many)[:MAX_SQL]
        run["statements"].append(entry)


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
            "error": None,
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

output = None
with connection.execute_wrapper(wrapper):
    for app, target in ward["targets"]:
        try:
            call_command("migrate", app, target, interactive=False, verbosity=0)
        except Exception:
            output = traceback.format_exc()
            break
print(json.dumps({"runs": runs, "output": output}))
