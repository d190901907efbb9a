#!/usr/bin/env bash
# The Django tests (tests/django_*.rs) run a real Django project against real
# Postgres. This script creates, idempotently, the Python they use: a venv at a
# fixed, git-ignored path in the repository (.venv-test/), with pinned Django 5
# and psycopg. Tests look for .venv-test/bin/python (or $WARD_TEST_PYTHON) and
# fail, naming this script, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-test
DJANGO=5.1.4
PSYCOPG=3.2.3

python=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$python" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import django, psycopg, sys; sys.exit(0 if django.__version__ == '$DJANGO' and psycopg.__version__ == '$PSYCOPG' else 1)" 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "Django==$DJANGO" "psycopg[binary]==$PSYCOPG"
fi
"$VENV/bin/python" -c "import django, psycopg; print('Django', django.__version__, '/ psycopg', psycopg.__version__)"
