"""
Python that the ``omero`` execution module runs INSIDE OMERO.web's
virtualenv (``<venv>/bin/python -c``), kept here as real, readable
functions rather than strings: :py:func:`program` turns one of them, by name,
into the program text. Each reads its request as JSON on stdin (values, secrets
included, never appear on a command line) and prints its answer as one JSON
line after a marker.

The venv's python may be as old as 3.6 (CentOS 7): plain Python 3.6 here.
Nothing in this module runs in the minion's own interpreter.
"""

import inspect

MARKER = "@@omero-salt@@"


def marker():
    """The marker the programs print before their JSON answer."""
    return MARKER


def program(name):
    """The text of a ``python -c`` program that runs this module's function ``name``."""
    function = globals()[name]
    return "{}\nimport json, sys\n{}(json.loads(sys.stdin.read()), {!r})\n".format(
        inspect.getsource(function), name, MARKER
    )


def write_config(request, marker):
    """
    Write properties with omero-py's own ``omero.config.ConfigXml`` (exclusive
    lock, atomic replace, the file layout of ``omero config``).

    request: {"path": config.xml, "expected": {key: old text or None},
    "new": {key: new text or None (unset)}}. Nothing is written when a key
    no longer holds its expected text (exit 3).
    """
    import json
    import os
    import sys
    import time

    os.environ.pop("OMERO_CONFIG", None)
    import portalocker
    from omero.config import ConfigXml

    path = request["path"]
    grid = os.path.dirname(path)
    try:
        if not os.path.isdir(grid):
            os.makedirs(grid)
    except OSError as exc:
        sys.stderr.write("Cannot create %s: %s\n" % (grid, exc))
        sys.exit(2)
    deadline = time.time() + 10
    while True:
        try:
            cfg = ConfigXml(path)
            break
        except portalocker.LockException:
            if time.time() > deadline:
                sys.stderr.write("Could not acquire lock on %s\n" % path)
                sys.exit(112)
            time.sleep(0.2)
        except Exception as exc:  # pylint: disable=broad-except
            sys.stderr.write("Cannot open %s: %s\n" % (path, exc))
            sys.exit(113)
    try:
        current = cfg.as_map()
        stale = sorted(k for k, v in request["expected"].items() if current.get(k) != v)
        if stale:
            cfg.save_on_close = False
            sys.stderr.write(
                "%s changed since it was read (%s): nothing written\n" % (path, ", ".join(stale))
            )
            sys.exit(3)
        for key, value in request["new"].items():
            if value is None:
                if key in current:
                    del cfg[key]
            else:
                cfg[key] = value
    finally:
        cfg.close()
    sys.stdout.write("\n" + marker + json.dumps(sorted(request["new"])) + "\n")


def default_lists(request, marker):
    """
    OMERO.web's built-in default of list properties, exactly as ``omero
    config append`` computes it (``PrefsControl.get_omeroweb_default``).

    request: {"keys": [property, ...]}.
    """
    import json
    import sys

    try:
        from omeroweb import settings
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write("Cannot import omeroweb.settings: %s\n" % exc)
        sys.exit(2)
    out = {}
    for key in request["keys"]:
        setting = settings.CUSTOM_SETTINGS_MAPPINGS.get(key)
        try:
            default = setting[2](setting[1]) if setting else []
        except Exception as exc:  # pylint: disable=broad-except
            sys.stderr.write("Cannot retrieve default value for property %s: %s\n" % (key, exc))
            sys.exit(3)
        if not isinstance(default, list):
            sys.stderr.write("Property %s is not a list\n" % key)
            sys.exit(4)
        out[key] = default
    sys.stdout.write("\n" + marker + json.dumps(out) + "\n")


def load_settings(request, marker):
    """
    Import ``omeroweb.settings`` and say why it fails: the ``omero web`` CLI
    reports a settings error (e.g. a value OMERO.web cannot parse) only as
    "Error printing text".
    """
    import json
    import sys

    try:
        import omeroweb.settings  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
        sys.exit(1)
    sys.stdout.write("\n" + marker + json.dumps(True) + "\n")


def session_roundtrip(request, marker):
    """
    Write a session with OMERO.web's own session engine and cache (file,
    Redis...), read it back and delete it: what every login needs. Fails
    with the backend's error (e.g. Redis's WRONGPASS).
    """
    import json
    import os
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")
    try:
        import importlib

        import django

        django.setup()
        from django.conf import settings

        engine = importlib.import_module(settings.SESSION_ENGINE)
        store = engine.SessionStore()
        store["omero_web_formula_check"] = "ok"
        store.save()
        again = engine.SessionStore(session_key=store.session_key)
        found = again.get("omero_web_formula_check")
        again.delete()
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
        sys.exit(1)
    if found != "ok":
        sys.stderr.write("a session written with %s could not be read back\n" % settings.SESSION_ENGINE)
        sys.exit(1)
    sys.stdout.write("\n" + marker + json.dumps(settings.SESSION_ENGINE) + "\n")


def clear_sessions(request, marker):
    """
    Delete every session of OMERO.web's configured session engine (file,
    cache such as Redis, database) without decoding any: the store after an
    upgrade that changed the session serializer or Django's major version.
    Answers ``{"engine", "cleared"}`` (the number of sessions deleted, or
    -1 when the cache can only be cleared as a whole).
    """
    import importlib
    import json
    import os
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")
    try:
        import django

        django.setup()
        from django.conf import settings

        name = settings.SESSION_ENGINE
        engine = importlib.import_module(name)
        cleared = 0
        if name.endswith((".cache", ".cached_db")):
            from django.core.cache import caches

            cache = caches[settings.SESSION_CACHE_ALIAS]
            prefix = getattr(engine, "KEY_PREFIX", "django.contrib.sessions.cache")
            if hasattr(cache, "delete_pattern"):  # django-redis
                cleared = cache.delete_pattern(prefix + "*") or 0
            else:
                cache.clear()
                cleared = -1
        if name.endswith((".db", ".cached_db")):
            cleared += engine.SessionStore.get_model_class().objects.all().delete()[0]
        if name.endswith(".file"):
            store = engine.SessionStore()
            path = store._get_storage_path()  # pylint: disable=protected-access
            for entry in os.listdir(path):
                if entry.startswith(settings.SESSION_COOKIE_NAME):
                    os.unlink(os.path.join(path, entry))
                    cleared += 1
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
        sys.exit(1)
    sys.stdout.write("\n" + marker + json.dumps({"engine": name, "cleared": cleared}) + "\n")
