# Embedded in ward (src/django.rs) and run as `python manage.py shell -c <this>`:
# prints, as one JSON document, what the project's own models say about each
# column (choices, max_length, validators, JSONField defaults, null/blank), so
# `ward seed --init-spec --django` can write values the models' full_clean()
# accepts. Regex validators get sample values generated here and checked
# against every validator of the field. Reads no rows; writes nothing.
import json
import random

import django
from django.apps import apps
from django.core import validators as V
from django.core.exceptions import ValidationError

try:
    import re._parser as sre
except ImportError:  # Python < 3.11
    import sre_parse as sre

LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
WORD = LOWER + LOWER.upper() + DIGITS + "_"
CATEGORIES = {
    "CATEGORY_DIGIT": DIGITS,
    "CATEGORY_NOT_DIGIT": LOWER,
    "CATEGORY_WORD": WORD,
    "CATEGORY_NOT_WORD": "-.",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": LOWER + DIGITS,
}


class Unsupported(Exception):
    pass


def sample(parsed, rnd):
    return "".join(one(op, av, rnd) for op, av in parsed)


def one(op, av, rnd):
    name = str(op)
    if name == "LITERAL":
        return chr(av)
    if name == "NOT_LITERAL":
        return "a" if av != ord("a") else "b"
    if name == "ANY":
        return rnd.choice(LOWER)
    if name == "IN":
        return rnd.choice(char_set(av))
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        lo, hi, sub = av
        hi = min(hi, lo + 4)
        return "".join(sample(sub, rnd) for _ in range(rnd.randint(lo, hi)))
    if name == "SUBPATTERN":
        return sample(av[-1], rnd)
    if name == "BRANCH":
        return sample(rnd.choice(av[1]), rnd)
    if name == "AT":
        return ""
    raise Unsupported(name)


def char_set(items):
    chars, negate = [], False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars.append(chr(av))
        elif name == "RANGE":
            chars.extend(chr(c) for c in range(av[0], min(av[1], av[0] + 95) + 1))
        elif name == "CATEGORY":
            chars.extend(CATEGORIES.get(str(av), ""))
        else:
            raise Unsupported(name)
    if negate:
        chars = [c for c in WORD if c not in chars]
    if not chars:
        raise Unsupported("empty set")
    return chars


# Words for values a person would type (a username, a handle, a tag): tried
# before strings drawn from the pattern, which pass it but read like noise
# ("R@x0t" for auth_user.username).
FIRST = ("amelia oliver isla george ava noah mia arthur ivy leo freya oscar lily harry "
         "grace jack evie charlie ella theo sophie jacob ruby alfie poppy finley alice "
         "henry rosie thomas").split()
LAST = ("smith jones taylor brown williams wilson johnson davies patel wright robinson "
        "evans walker thompson white hughes edwards green hall wood harris lewis martin "
        "jackson clarke turner hill scott cooper ward").split()
WORDS = ("north river summer garden harbour maple stone meadow silver willow orchard "
         "bright harvest beacon clover").split()


def readable(rnd):
    f, l, w = rnd.choice(FIRST), rnd.choice(LAST), rnd.choice(WORDS)
    n = rnd.randint(1, 999)
    forms = (f"{f}.{l}", f"{f}_{l}", f"{f[0]}{l}", f"{f}{n}", f"{f}.{l}{n}",
             f"{l}-{f}", f"{f.title()} {l.title()}", f"{w}-{rnd.choice(WORDS)}", f"{w}{n}",
             f"{f}{l}{n}", f"{l.upper()}{n}", f)
    return rnd.choice(forms)


def passes(field, s):
    if not s or (field.max_length is not None and len(s) > field.max_length):
        return False
    try:
        field.run_validators(s)
    except ValidationError:
        return False
    return True


def regex_samples(field, validator, want):
    """Up to `want` distinct values that pass every validator of the field:
    readable ones where the field takes them, else drawn from the pattern."""
    if validator.inverse_match:
        return None
    rnd = random.Random(field.model._meta.label_lower + "." + field.name)
    found, seen = [], set()
    for _ in range(want * 20):
        s = readable(rnd)
        if s not in seen:
            seen.add(s)
            if passes(field, s):
                found.append(s)
                if len(found) >= want:
                    return found
    # The field takes few readable values (a code like "A12345"): the rest
    # come from the pattern.
    if len(found) < want // 2:
        found = []
    try:
        parsed = sre.parse(validator.regex.pattern, validator.regex.flags)
    except Exception:
        return found or None
    for _ in range(want * 20):
        try:
            s = sample(parsed, rnd)
        except Unsupported:
            return found or None
        if s in seen:
            continue
        seen.add(s)
        if passes(field, s):
            found.append(s)
            if len(found) >= want:
                break
    return found or None


def in_unique_set(field):
    """Whether the field is part of a unique_together or UniqueConstraint
    (django-oscar's (code, product_class)): its values must then be many."""
    meta = field.model._meta
    if any(field.name in group for group in meta.unique_together):
        return True
    from django.db.models import UniqueConstraint

    return any(
        isinstance(c, UniqueConstraint) and field.name in (c.fields or ())
        for c in meta.constraints
    )


def registered_choices(field):
    """Values an application checks against a registry of its own in clean(),
    not on the field: wagtail's log actions (BaseLogEntry.action)."""
    try:
        from wagtail.log_actions import registry
        from wagtail.models.audit_log import BaseLogEntry
    except Exception:
        return None
    if field.name == "action" and issubclass(field.model, BaseLogEntry):
        registry.scan_for_actions()
        return sorted(registry.formatters)
    return None


def as_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def describe(field):
    explicit = list(getattr(field, "_validators", []))
    every = list(field.validators)
    d = {
        "name": field.name,
        "column": field.column,
        "type": field.get_internal_type(),
        "null": field.null,
        "blank": field.blank,
        "unique": bool(field.unique),
        "relation": bool(field.is_relation),
        "primary_key": bool(field.primary_key),
        "max_length": field.max_length,
        "choices": None,
        "min": None,
        "max": None,
        "bounded": False,
        "regex": None,
        "regex_unsupported": None,
        "kind": None,
        "json_default": None,
        "related_table": None,
        "related_column": None,
        "db_constraint": None,
    }
    if field.is_relation and field.related_model is not None and getattr(field, "target_field", None) is not None:
        # ForeignKey(db_constraint=False) has no key in the database: ward
        # learns the reference here and draws values from the parent's keys.
        d["related_table"] = field.related_model._meta.db_table
        d["related_column"] = field.target_field.column
        d["db_constraint"] = bool(getattr(field, "db_constraint", True))
    if field.choices:
        d["choices"] = [as_text(v) for v, _ in field.flatchoices if v not in (None, "")]
    else:
        d["choices"] = registered_choices(field)
    for v in every:
        if isinstance(v, V.MinValueValidator):
            lim = float(v.limit_value() if callable(v.limit_value) else v.limit_value)
            d["min"] = lim if d["min"] is None else max(d["min"], lim)
        elif isinstance(v, V.MaxValueValidator):
            lim = float(v.limit_value() if callable(v.limit_value) else v.limit_value)
            d["max"] = lim if d["max"] is None else min(d["max"], lim)
    d["bounded"] = any(isinstance(v, (V.MinValueValidator, V.MaxValueValidator)) for v in explicit)
    t = d["type"]
    if t == "EmailField" or any(isinstance(v, V.EmailValidator) for v in every):
        d["kind"] = "email"
    elif t == "URLField" or any(isinstance(v, V.URLValidator) for v in every):
        d["kind"] = "url"
    elif t == "SlugField":
        d["kind"] = "slug"
    elif any(c.__name__ == "PhoneNumberField" for c in type(field).__mro__):
        # django-phonenumber-field: parses what it reads with the project's
        # default region, if any; E.164 parses everywhere.
        d["kind"] = "phone"
    for v in explicit:
        # A slug field's own pattern is stricter than a slug when it has one
        # (django-oscar's attribute codes: letters, digits and underscores).
        if isinstance(v, V.RegexValidator) and not isinstance(v, (V.URLValidator,)) and d["kind"] in (None, "slug"):
            samples = regex_samples(field, v, 1000 if field.unique or in_unique_set(field) else 12)
            if samples is None:
                d["regex_unsupported"] = v.regex.pattern
            else:
                d["regex"] = samples
            break
    if t == "JSONField" and field.has_default():
        try:
            d["json_default"] = json.dumps(field.get_default())
        except (TypeError, ValueError):
            pass
    return d


models = []
for model in apps.get_models():
    meta = model._meta
    if meta.proxy:
        continue
    models.append(
        {
            "label": meta.label,
            "db_table": meta.db_table,
            "fields": [describe(f) for f in meta.concrete_fields if f.column],
        }
    )
print(json.dumps({"django": django.get_version(), "models": models}))
