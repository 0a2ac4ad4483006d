"""
One declaration per fact: the pillar schema (``_utils/omero_web_schema.py``:
types, constraints, OMERO.web properties), the defaults
(``parameters/defaults.yaml``) and the documentation (``pillar.example``)
hold the same keys.

pillar.example documents the platform parameters as commented-out YAML
(``  # python:`` / ``  #   executable: /usr/bin/python3``): uncommented,
those lines are keys at the indentation they would have.
"""

import re

import pytest

from unit_support import FORMULA, REPO, defaults

schema = FORMULA.schema

#: Keys only a pillar has (no default).
PILLAR_ONLY = {"lookup"}

_KEY_LINE = re.compile(r"^(?P<indent> *)(?:#(?P<more> *))?(?P<key>[a-z0-9_]+):(?: |$)")


def schema_paths():
    return schema.key_paths()


def schema_leaves():
    return {":".join(parts) for parts, _ in schema.leaves()}


def _below_a_leaf(path, leaves):
    parts = path.split(":")
    return any(":".join(parts[:depth]) in leaves for depth in range(1, len(parts)))


def documented_paths():
    """Every key pillar.example shows under omero_web, set or commented out."""
    leaves = schema_leaves()
    stack = []  # (indent, key)
    paths = set()
    for line in (REPO / "pillar.example").read_text().splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("- ") or stripped.startswith("#   - "):
            continue
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match.group("indent"))
        if match.group("more") is not None:
            # "# key" is a key at the indent the line has once "# " is removed
            indent += max(len(match.group("more")) - 1, 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group("key")))
        if stack[0][1] != "omero_web" or len(stack) < 2:
            continue
        path = ":".join(key for _, key in stack[1:])
        if not _below_a_leaf(path, leaves):
            paths.add(path)
    return paths


def default_paths(values=None, parts=()):
    leaves = schema_leaves()
    paths = set()
    for key, value in (defaults() if values is None else values).items():
        path = parts + (key,)
        paths.add(":".join(path))
        if isinstance(value, dict) and ":".join(path) not in leaves:
            paths |= default_paths(value, path)
    return paths


def test_defaults_hold_the_schema_keys():
    missing = schema_paths() - PILLAR_ONLY - default_paths()
    extra = default_paths() - schema_paths()
    assert not missing, "in the schema, without a default in defaults.yaml: %s" % sorted(missing)
    assert not extra, "in defaults.yaml, not in the schema: %s" % sorted(extra)


def test_pillar_example_documents_the_schema_keys():
    documented = documented_paths()
    missing = schema_paths() - documented
    extra = documented - schema_paths()
    assert not missing, "in the schema, not documented in pillar.example: %s" % sorted(missing)
    assert not extra, "documented in pillar.example, not in the schema: %s" % sorted(extra)


def test_every_leaf_has_a_known_kind():
    for parts, key in schema.leaves():
        assert hasattr(FORMULA.validate, "_kind_" + key.kind), (parts, key.kind)


def test_direct_properties_are_omero_web_properties():
    direct = schema.direct_properties()
    assert direct[("sessions", "cookie_age")] == "omero.web.session_cookie_age"
    assert direct[("gunicorn", "port")] == "omero.web.application_server.port"
    assert all(prop.startswith("omero.web.") for prop in direct.values())


def test_owned_properties_come_from_the_schema():
    owned = schema.owned_properties()
    # what the structured keys set, and nothing appended
    for prop in ("omero.web.prefix", "omero.web.caches", "omero.web.wsgi_threads",
                 "omero.web.csrf_trusted_origins", "omero.web.server_list"):
        assert prop in owned
    assert "omero.web.middleware" not in owned and "omero.web.apps" not in owned


@pytest.mark.parametrize("text,expected", [("5.33.2", "==5.33.2"), (">=5.6", ">=5.6"), (None, "")])
def test_version_spec(text, expected):
    assert schema.version_spec(text) == expected
