#!/usr/bin/env bash
# The Django tests (tests/it/django_*.rs) run a real Django project against real
# Postgres. This script creates, idempotently, the Python they use: a venv at a
# fixed, git-ignored path in the repository (.venv-test/), with pinned Django 5
# and psycopg, plus real projects from PyPI with long migration histories
# (wagtail, django-allauth: tests/fixtures/django_real; django-cms and the
# exact versions of its dependencies: tests/fixtures/django_cms), and
# phonenumbers (libphonenumber) for tests/it/clinical_phone.rs, and
# django-phonenumber-field for the fixture's PhoneNumberField. Tests look for
# .venv-test/bin/python (or $WARD_TEST_PYTHON) and
# fail, naming this script, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-test
DJANGO=5.1.4
PSYCOPG=3.2.3
WAGTAIL=6.3.1
ALLAUTH=65.3.0
DJANGO_CMS=5.0.13
# django-cms's dependencies, pinned: their newest releases want Django 5.2.
CMS_DEPS="django-formtools==2.6.1 django-classy-tags==4.1.0 django-sekizai==4.1.0 djangocms-admin-style==3.3.1"
# libphonenumber's Python port: tests/it/clinical_phone.rs checks phone.valid_uk against it.
PHONENUMBERS=9.0.43
# A PhoneNumberField in the fixture's audit app (tests/it/django_seed.rs).
PHONENUMBER_FIELD=8.0.0

python=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$python" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "
import sys, django, psycopg, wagtail, allauth, phonenumbers, cms, formtools, phonenumber_field
from importlib.metadata import version
ok = (django.__version__, psycopg.__version__, wagtail.__version__, allauth.__version__, phonenumbers.__version__, cms.__version__, version('django-phonenumber-field')) == ('$DJANGO', '$PSYCOPG', '$WAGTAIL', '$ALLAUTH', '$PHONENUMBERS', '$DJANGO_CMS', '$PHONENUMBER_FIELD')
sys.exit(0 if ok else 1)" 2>/dev/null; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "Django==$DJANGO" "psycopg[binary]==$PSYCOPG" "wagtail==$WAGTAIL" "django-allauth==$ALLAUTH" "phonenumbers==$PHONENUMBERS" \
    "django-cms==$DJANGO_CMS" $CMS_DEPS "django-phonenumber-field==$PHONENUMBER_FIELD"
fi
"$VENV/bin/python" -c "import django, psycopg, wagtail, allauth, phonenumbers, cms; print('Django', django.__version__, '/ psycopg', psycopg.__version__, '/ wagtail', wagtail.__version__, '/ django-allauth', allauth.__version__, '/ phonenumbers', phonenumbers.__version__, '/ django-cms', cms.__version__)"
