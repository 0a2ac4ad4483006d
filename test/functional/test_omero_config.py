"""
Functional tests: the ``omero`` execution and state modules, loaded by
Salt's real loader, against the real omero CLI (omero-py + omero-web in a
venv, IcePy built from PyPI's sdist), running as an unprivileged user.

What the modules write is checked with the real ``omero config get``; what
``config_append``/``config_remove`` compute is compared with what the real
``omero config append --set``/``remove`` does in a twin OMERODIR.
"""

import json
import logging
import os
import stat

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

MIDDLEWARE = "omero.web.middleware"
WHITENOISE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}
CORS = {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"}
SECRET = "Sup3r-s3cret-functional-key"


def cli_get(omero_cli, omerodir, key):
    """The value as the real omero CLI reads it (None when unset)."""
    out = omero_cli(omerodir, "config", "get", key).stdout
    return out.rstrip("\n") if out else None


def test_loader_and_pillar_defaults(mods, omero_venv, omero_user):
    paths = mods.omero.paths()
    assert paths["user"] == omero_user.pw_name
    assert paths["venv"] == str(omero_venv)
    installed = json.loads((omero_venv / "functional-stamp.json").read_text())["installed"]
    assert mods.omero.version() == installed["omero-web"]


def test_set_and_get_roundtrip(mods, omerodir, omero_cli, spawned):
    values = {
        "omero.web.prefix": "/omero",
        "omero.web.application_server.port": 4090,
        "omero.web.session_expire_at_browser_close": True,
        "omero.web.debug": False,
        "omero.web.server_list": [["localhost", 4064, "omero"]],
        "omero.web.login_redirect": {"redirect": ["webindex"], "viewname": "load_template"},
    }
    for key, value in values.items():
        changes = mods.omero.config_set(key, value, omerodir=str(omerodir))
        assert changes == {key: {"old": None, "new": value}}
    assert spawned.count() == len(values)  # one writer process per set
    # config.xml is owned by the user and not world-readable (umask 027);
    # checked before any `omero config get`, which rewrites the file
    config = omerodir / "etc" / "grid" / "config.xml"
    st = config.stat()
    assert st.st_uid == omerodir.stat().st_uid
    assert stat.S_IMODE(st.st_mode) & 0o007 == 0
    assert stat.S_IMODE((omerodir / "etc" / "grid").stat().st_mode) & 0o007 == 0
    # the real CLI reads what OMERO.web will parse
    assert cli_get(omero_cli, omerodir, "omero.web.prefix") == "/omero"
    assert cli_get(omero_cli, omerodir, "omero.web.application_server.port") == "4090"
    assert cli_get(omero_cli, omerodir, "omero.web.session_expire_at_browser_close") == "true"
    assert cli_get(omero_cli, omerodir, "omero.web.debug") == "false"
    assert json.loads(cli_get(omero_cli, omerodir, "omero.web.server_list")) == [["localhost", 4064, "omero"]]
    # read back in-process, by meaning
    assert mods.omero.config_get_all(omerodir=str(omerodir)) == values
    # same meanings, other spellings: nothing to do, nothing spawned
    spawned.reset()
    for key, value in {
        "omero.web.session_expire_at_browser_close": "True",
        "omero.web.application_server.port": "4090",
        "omero.web.login_redirect": '{"viewname": "load_template", "redirect": ["webindex"]}',
    }.items():
        assert mods.omero.config_set(key, value, omerodir=str(omerodir)) == {}
    assert spawned.count() == 0


def test_reads_what_the_cli_wrote(mods, omerodir, omero_cli, spawned):
    omero_cli(omerodir, "config", "set", "omero.web.wsgi_workers", "5")
    omero_cli(omerodir, "config", "set", "omero.web.apps", '["omero_figure"]')
    assert mods.omero.config_get("omero.web.wsgi_workers", omerodir=str(omerodir)) == 5
    assert mods.omero.config_get("omero.web.apps", omerodir=str(omerodir)) == ["omero_figure"]
    assert spawned.count() == 0


def test_append_to_unset_key_copies_builtin_default_like_the_cli(mods, omerodir, omero_cli, workspace, omero_user):
    twin = omerodir.parent / "twin"
    twin.mkdir()
    os.chown(twin, omero_user.pw_uid, omero_user.pw_gid)
    omero_cli(twin, "config", "append", "--set", MIDDLEWARE, json.dumps(WHITENOISE))
    expected = json.loads(cli_get(omero_cli, twin, MIDDLEWARE))
    assert len(expected) > 1  # the built-in default list was copied first

    changes = mods.omero.config_append(MIDDLEWARE, WHITENOISE, omerodir=str(omerodir))
    assert changes[MIDDLEWARE]["old"] is None
    assert changes[MIDDLEWARE]["new"] == expected
    assert json.loads(cli_get(omero_cli, omerodir, MIDDLEWARE)) == expected
    # --set semantics: appending it again changes nothing
    assert mods.omero.config_append(MIDDLEWARE, WHITENOISE, omerodir=str(omerodir)) == {}


def test_append_default_entry_to_unset_key_is_noop_like_the_cli(mods, omerodir, omero_cli, spawned):
    default_entry = {"index": 2, "class": "django.middleware.common.CommonMiddleware"}
    assert mods.omero.config_plan(appends={MIDDLEWARE: [default_entry]}, omerodir=str(omerodir)) == {}
    assert spawned.count() == 1  # the default list had to be read, once
    omero_cli(omerodir, "config", "append", "--set", MIDDLEWARE, json.dumps(default_entry))
    assert cli_get(omero_cli, omerodir, MIDDLEWARE) is None  # the CLI leaves it unset too


def test_append_to_existing_list(mods, omerodir, omero_cli, spawned):
    omero_cli(omerodir, "config", "set", "omero.web.apps", '["omero_iviewer"]')
    spawned.reset()
    changes = mods.omero.config_append("omero.web.apps", "omero_figure", omerodir=str(omerodir))
    assert changes == {"omero.web.apps": {"old": ["omero_iviewer"], "new": ["omero_iviewer", "omero_figure"]}}
    assert spawned.count() == 1  # the list exists: no default lookup, one write
    assert json.loads(cli_get(omero_cli, omerodir, "omero.web.apps")) == ["omero_iviewer", "omero_figure"]
    top_link = ["Help", "https://help.openmicroscopy.org/", {"title": "Help", "target": "new"}]
    mods.omero.config_set("omero.web.ui.top_links", [], omerodir=str(omerodir))
    mods.omero.config_append("omero.web.ui.top_links", top_link, omerodir=str(omerodir))
    assert json.loads(cli_get(omero_cli, omerodir, "omero.web.ui.top_links")) == [top_link]


def test_remove_like_the_cli(mods, omerodir, omero_cli, omero_user):
    twin = omerodir.parent / "twin"
    twin.mkdir()
    os.chown(twin, omero_user.pw_uid, omero_user.pw_gid)
    entry = {"index": 6, "class": "django.middleware.clickjacking.XFrameOptionsMiddleware"}
    # removal from an unset key starts from the built-in default, as the CLI does
    omero_cli(twin, "config", "remove", MIDDLEWARE, json.dumps(entry))
    changes = mods.omero.config_remove(MIDDLEWARE, entry, omerodir=str(omerodir))
    assert changes[MIDDLEWARE]["new"] == json.loads(cli_get(omero_cli, twin, MIDDLEWARE))
    assert entry not in json.loads(cli_get(omero_cli, omerodir, MIDDLEWARE))
    # removing what is not there is no change (the CLI would fail)
    assert mods.omero.config_remove(MIDDLEWARE, entry, omerodir=str(omerodir)) == {}


def test_unset(mods, omerodir, omero_cli):
    omero_cli(omerodir, "config", "set", "omero.web.debug", "true")
    assert mods.omero.config_unset("omero.web.debug", omerodir=str(omerodir)) == {
        "omero.web.debug": {"old": True, "new": None}
    }
    assert cli_get(omero_cli, omerodir, "omero.web.debug") is None
    assert mods.omero.config_unset("omero.web.debug", omerodir=str(omerodir)) == {}


def test_batch_process_counts(mods, omerodir, omero_cli, spawned, loaders):
    k = 12
    properties = {f"omero.web.test.key{i}": f"value-{i}" for i in range(k)}
    appends = {MIDDLEWARE: [WHITENOISE, CORS], "omero.web.apps": ["omero_figure"]}
    plan = mods.omero.config_plan(properties=properties, appends=appends, omerodir=str(omerodir))
    assert len(plan) == k + 2
    assert spawned.count() == 1  # the middleware default list
    spawned.reset()
    loaders.context.clear()
    changes = mods.omero.config_batch(properties=properties, appends=appends, omerodir=str(omerodir))
    assert changes == plan
    assert spawned.count() <= 2
    assert loaders.context["omero.processes"] == spawned.count()
    assert cli_get(omero_cli, omerodir, "omero.web.test.key7") == "value-7"
    # the no-op: zero processes
    spawned.reset()
    assert mods.omero.config_plan(properties=properties, appends=appends, omerodir=str(omerodir)) == {}
    assert mods.omero.config_batch(properties=properties, appends=appends, omerodir=str(omerodir)) == {}
    assert spawned.count() == 0


def test_state_managed_test_mode_then_apply_then_noop(states, omerodir, omero_cli, spawned, caplog):
    caplog.set_level(logging.DEBUG)
    omero_cli(omerodir, "config", "set", "omero.web.prefix", "/old")
    omero_cli(omerodir, "config", "set", "omero.web.stale", "x")
    omero_cli(omerodir, "config", "set", "omero.other.kept", "y")
    before = (omerodir / "etc" / "grid" / "config.xml").read_bytes()
    spawned.reset()
    kwargs = {
        "name": "omero-web-config",
        "properties": {
            "omero.web.prefix": "/omero",
            "omero.web.server_list": [["localhost", 4064, "omero"]],
            "omero.web.secret_key": SECRET,
        },
        "appends": {MIDDLEWARE: [WHITENOISE], "omero.web.apps": ["omero_figure"]},
        "prune": True,
        "omerodir": str(omerodir),
    }
    predicted = states.omero.config_managed(test=True, **kwargs)
    assert predicted.result is None
    assert (omerodir / "etc" / "grid" / "config.xml").read_bytes() == before  # nothing written
    applied = states.omero.config_managed(**kwargs)
    assert applied.result is True, applied.comment
    assert applied.changes == predicted.changes
    assert set(applied.changes) == {
        "omero.web.prefix",
        "omero.web.server_list",
        "omero.web.secret_key",
        MIDDLEWARE,
        "omero.web.apps",
        "omero.web.stale",  # pruned
    }
    assert applied.changes["omero.web.stale"] == {"old": "x", "new": None}
    assert applied.changes["omero.web.secret_key"] == {"old": None, "new": "********"}
    assert SECRET not in json.dumps(applied.raw) and SECRET not in json.dumps(predicted.raw)
    assert cli_get(omero_cli, omerodir, "omero.web.secret_key") == SECRET
    # Salt's and the modules' log records (not the test harness's own
    # "Calling state.single(...)" line) never contain the secret, even at DEBUG.
    salt_log = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("saltfactories")
    )
    assert "omero.web.secret_key" in salt_log  # the log was captured...
    assert SECRET not in salt_log  # ...and holds no secret
    assert cli_get(omero_cli, omerodir, "omero.web.stale") is None
    assert cli_get(omero_cli, omerodir, "omero.other.kept") == "y"  # outside the prune prefix
    # the no-op, in test mode and for real: True, no changes, no omero process
    spawned.reset()
    for test in (True, False):
        again = states.omero.config_managed(test=test, **kwargs)
        assert again.result is True and again.changes == {}, again.raw
    assert spawned.count() == 0


def test_state_change_k_keys_spawns_at_most_two(states, omerodir, spawned):
    props = {f"omero.web.test.key{i}": i for i in range(10)}
    ret = states.omero.config_managed(
        name="cfg", properties=props, appends={MIDDLEWARE: [WHITENOISE]}, omerodir=str(omerodir)
    )
    assert ret.result is True and len(ret.changes) == 11
    assert spawned.count() <= 2
    spawned.reset()
    props = {key: value + 100 for key, value in props.items()}
    ret = states.omero.config_managed(
        name="cfg", properties=props, appends={MIDDLEWARE: [WHITENOISE]}, omerodir=str(omerodir)
    )
    assert ret.result is True and len(ret.changes) == 10
    assert spawned.count() == 1


def test_single_key_states(states, omerodir, omero_cli):
    ret = states.omero.config_set(name="omero.web.wsgi_workers", value=3, omerodir=str(omerodir))
    assert ret.result is True and ret.changes == {"omero.web.wsgi_workers": {"old": None, "new": 3}}
    ret = states.omero.config_appended(name="omero.web.apps", values=["a", "b"], omerodir=str(omerodir))
    assert ret.changes == {"omero.web.apps": {"old": None, "new": ["a", "b"]}}
    ret = states.omero.config_appended(name="omero.web.apps", values="b", omerodir=str(omerodir))
    assert ret.result is True and ret.changes == {}
    ret = states.omero.config_absent(name="omero.web.wsgi_workers", test=True, omerodir=str(omerodir))
    assert ret.result is None and ret.changes == {"omero.web.wsgi_workers": {"old": 3, "new": None}}
    ret = states.omero.config_absent(name="omero.web.wsgi_workers", omerodir=str(omerodir))
    assert ret.result is True
    assert cli_get(omero_cli, omerodir, "omero.web.wsgi_workers") is None


def test_masking_of_secret_keys(states, omerodir, omero_cli):
    ret = states.omero.config_set(name="omero.web.public.password", value=SECRET, omerodir=str(omerodir))
    assert ret.result is True
    assert ret.changes == {"omero.web.public.password": {"old": None, "new": "********"}}
    assert SECRET not in json.dumps(ret.raw)
    assert cli_get(omero_cli, omerodir, "omero.web.public.password") == SECRET


def test_bad_omerodir(mods, states, workspace):
    missing = workspace / "no-such-parent" / "omero-web"  # the user cannot create it
    with pytest.raises(CommandExecutionError, match="Permission denied|Cannot create"):
        mods.omero.config_set("omero.web.prefix", "/omero", omerodir=str(missing))
    ret = states.omero.config_set(name="omero.web.prefix", value="/omero", omerodir=str(missing))
    assert ret.result is False
    assert "Cannot create" in ret.comment or "Permission denied" in ret.comment
    # a directory the user cannot write (root's)
    with pytest.raises(CommandExecutionError, match="Permission denied|Cannot"):
        mods.omero.config_set("omero.web.prefix", "/omero", omerodir=str(workspace))
    # test mode on a host where OMERODIR does not exist yet: predicts, no error
    ret = states.omero.config_set(name="omero.web.prefix", value="/omero", test=True, omerodir=str(missing))
    assert ret.result is None and ret.changes == {"omero.web.prefix": {"old": None, "new": "/omero"}}


def test_bad_values(mods, states, omerodir, omero_cli):
    omero_cli(omerodir, "config", "set", "omero.web.prefix", "/omero")
    # appending to a property that is not a JSON list: the CLI refuses too
    refused = omero_cli(omerodir, "config", "append", "omero.web.prefix", '"x"', check=False)
    assert refused.returncode != 0 and "No JSON object could be decoded" in refused.stderr
    with pytest.raises(CommandExecutionError, match="No JSON object could be decoded"):
        mods.omero.config_append("omero.web.prefix", "x", omerodir=str(omerodir))
    ret = states.omero.config_appended(name="omero.web.prefix", values=["x"], omerodir=str(omerodir))
    assert ret.result is False and "No JSON object could be decoded" in ret.comment
    # values that cannot be written / keys omero refuses
    with pytest.raises(SaltInvocationError):
        mods.omero.config_set("omero.web.prefix", None, omerodir=str(omerodir))
    with pytest.raises(SaltInvocationError, match="Illegal property name"):
        mods.omero.config_set("omero.web.bad key", "x", omerodir=str(omerodir))
    ret = states.omero.config_managed(name="cfg", properties={"omero.web.bad key": 1}, omerodir=str(omerodir))
    assert ret.result is False and "Illegal property name" in ret.comment
    assert cli_get(omero_cli, omerodir, "omero.web.prefix") == "/omero"  # untouched


def test_bad_value_reported_by_omero_web(mods, states, omerodir, tmp_path):
    """A value OMERO.web cannot parse: the CLI's own error comes back."""
    mods.omero.config_set("omero.web.application_server", "bogus", omerodir=str(omerodir))
    with pytest.raises(CommandExecutionError, match="Unknown server type"):
        mods.omero.web_config_nginx(omerodir=str(omerodir))
    ret = states.omero.nginx_config(name=str(tmp_path / "bad.conf"), omerodir=str(omerodir))
    assert ret.result is False and "Unknown server type" in ret.comment


def test_default_lists_are_read_once_then_kept_in_the_minion_cachedir(mods, omerodir, spawned, loaders):
    entry = {"index": 2, "class": "django.middleware.common.CommonMiddleware"}
    assert mods.omero.config_plan(appends={MIDDLEWARE: [entry]}, omerodir=str(omerodir)) == {}
    assert spawned.count() == 1
    loaders.context.clear()  # the next salt-call run
    assert mods.omero.config_plan(appends={MIDDLEWARE: [entry]}, omerodir=str(omerodir)) == {}
    assert spawned.count() == 1  # no process: OMERO.web's defaults came from the cachedir
