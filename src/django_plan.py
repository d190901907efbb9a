# Embedded in ward (src/check/django.rs) and run as `python manage.py shell -c
# <this>`: prints, as one JSON document, every migration file of the project
# with its path (relative to the project), whether Django runs it in a
# transaction, and its operations (class, description, whether it runs
# Python, whether Django can unapply it), so `ward check --runner django` can blame findings on the file and
# operation. Reads the files only: no database access.
import json
import os
import sys

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.special import RunPython

base = os.getcwd()


def shown(path):
    """Relative to the project when inside it; else absolute (an installed
    package's migrations: site-packages/..., not ../../…)."""
    rel = os.path.relpath(path, base)
    return os.path.abspath(path) if rel.startswith("..") else rel


out = {}
for (app, name), migration in MigrationLoader(None, ignore_no_migrations=True).disk_migrations.items():
    path = getattr(sys.modules.get(type(migration).__module__), "__file__", None) or ""
    out[f"{app}.{name}"] = {
        "file": shown(path) if path else f"{app}/migrations/{name}.py",
        "atomic": bool(migration.atomic),
        # A squashed or renamed migration: Django records these names, not its own.
        "replaces": [list(r) for r in migration.replaces],
        "operations": [
            {
                "class": type(op).__name__,
                "describe": op.describe(),
                "python": isinstance(op, RunPython),
                # False for a RunPython / RunSQL without a reverse: Django refuses to unapply it.
                "reversible": bool(op.reversible),
            }
            for op in migration.operations
        ],
    }
print(json.dumps(out))
