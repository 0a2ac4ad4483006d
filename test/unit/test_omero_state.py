"""
Unit tests of the ``omero`` state module (``_states/omero.py``).

The state module runs on top of the REAL ``omero`` execution module
(``_modules/omero.py``, loaded with the loader mock as well) reading a real
config.xml in ``tmp_path``; only ``cmd.run_all`` (the omero process) is a
fake that behaves like the module's writer script. So test mode, masking and
error handling are checked against what the execution module really plans
and writes, not against canned returns.
"""

import hashlib
import json
import pathlib

import pytest

from unit_support import FORMULA, install_dist, read_profile, write_config

omero = FORMULA.omero
omero_state = FORMULA.omero_state

USER = "nobody"
SECRET = "s3cr3t-Key-value"
MASK = "********"


class FakeFileManaged:
    """file.managed stand-in: writes ``contents``, reports a diff, honours test."""

    def __init__(self, opts):
        self.opts = opts
        self.calls = []

    def __call__(self, name, contents, user=None, group=None, mode=None):
        self.calls.append({"name": name, "contents": contents, "user": user, "group": group, "mode": mode})
        path = pathlib.Path(name)
        old = path.read_text() if path.exists() else None
        if old == contents:
            return {"name": name, "result": True, "changes": {}, "comment": f"File {name} is in the correct state"}
        if self.opts["test"]:
            return {"name": name, "result": None, "changes": {"diff": "..."}, "comment": f"File {name} is set to be updated"}
        path.write_text(contents)
        return {"name": name, "result": True, "changes": {"diff": "..."}, "comment": f"File {name} updated"}


@pytest.fixture
def installed(venv):
    """The venv holds omero-web 5.33.2 (its dist-info)."""
    install_dist(venv, "omero-web", "5.33.2")
    return venv


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture(params=[False, True], ids=["apply", "test"])
def dry_run(request, opts):
    """Run the test once for real and once with test=True."""
    opts["test"] = request.param
    return request.param


@pytest.fixture
def file_managed(opts):
    return FakeFileManaged(opts)


@pytest.fixture
def configure_loader_modules(fake, installed, omerodir, opts, file_managed, utils):
    venv = installed
    pillar = {"omero_web": {"user": USER, "omerodir": str(omerodir), "venv": str(venv)}}
    context = {}
    salt_funcs = {"cmd.run_all": fake}
    # the execution module functions, as the loader would expose them
    for func in (
        "config_plan",
        "config_batch",
        "config_get_all",
        "paths",
        "version",
        "web_config_nginx",
    ):
        salt_funcs[f"omero.{func}"] = getattr(omero, func)
    return {
        omero: {
            "__salt__": salt_funcs,
            "__pillar__": pillar,
            "__context__": context,
            "__opts__": opts,
            "__utils__": utils,
        },
        omero_state: {
            "__salt__": salt_funcs,
            "__opts__": opts,
            # nginx files go through omero_web.nginx_file (nginx -t: its own tests)
            "__states__": {"omero_web.nginx_file": file_managed},
            "__context__": context,
            "__utils__": utils,
        },
    }


def assert_contract(ret, name):
    assert set(ret) >= {"name", "result", "changes", "comment"}
    assert ret["name"] == name
    assert ret["result"] in (True, False, None)
    assert isinstance(ret["comment"], str)


# ---------------------------------------------------------------- config_managed


def test_managed_changes_then_noop(omerodir, fake, dry_run):
    write_config(omerodir, {"omero.web.prefix": "/old", "omero.web.stale": "1", "omero.web.apps": '["a"]'})
    before = read_profile(omerodir)
    kwargs = {
        "properties": {"omero.web.prefix": "/omero", "omero.web.debug": False},
        "appends": {"omero.web.apps": ["b"]},
        "prune": True,
    }
    expected = {
        "omero.web.prefix": {"old": "/old", "new": "/omero"},
        "omero.web.debug": {"old": None, "new": False},
        # prune: the list is OMERO.web's default ([]) plus what is declared
        "omero.web.apps": {"old": ["a"], "new": ["b"]},
        "omero.web.stale": {"old": 1, "new": None},
    }
    ret = omero_state.config_managed("cfg", **kwargs)
    assert_contract(ret, "cfg")
    assert ret["changes"] == expected
    if dry_run:
        assert ret["result"] is None
        assert read_profile(omerodir) == before  # nothing written
        assert fake.by_program("write_config") == []
        # prune of an appended list reads OMERO.web's default list, only that
        assert len(fake.by_program("default_lists")) == len(fake.calls) == 1
        return
    assert ret["result"] is True
    assert len(fake.by_program("write_config")) == 1
    assert len(fake.calls) == 2  # the default list of omero.web.apps, then the write
    after = read_profile(omerodir)
    assert after["omero.web.prefix"] == "/omero" and after["omero.web.debug"] == "false"
    assert "omero.web.stale" not in after
    again = omero_state.config_managed("cfg", **kwargs)
    assert again["result"] is True and again["changes"] == {}
    assert len(fake.calls) == 2  # the no-op spawned nothing


def test_managed_noop_in_test_mode_is_true(omerodir, fake):
    write_config(omerodir, {"omero.web.debug": "True"})
    ret = omero_state.config_managed("cfg", properties={"omero.web.debug": True})
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert fake.calls == []


def test_test_mode_predicts_the_real_run(omerodir, fake, opts):
    write_config(omerodir, {"omero.web.apps": '["x"]', "omero.web.other": "1"})
    kwargs = {
        "properties": {"omero.web.server_list": [["localhost", 4064, "omero"]]},
        "appends": {"omero.web.apps": ["y"], "omero.web.middleware": [{"index": 0, "class": "w"}]},
        "prune": True,
    }
    opts["test"] = True
    predicted = omero_state.config_managed("cfg", **kwargs)
    opts["test"] = False
    applied = omero_state.config_managed("cfg", **kwargs)
    assert predicted["result"] is None and applied["result"] is True
    assert predicted["changes"] == applied["changes"]
    assert set(applied["changes"]) == {"omero.web.server_list", "omero.web.apps", "omero.web.middleware", "omero.web.other"}


@pytest.mark.parametrize("key", ["omero.web.secret_key", "omero.web.public.password", "omero.db.pass"])
def test_known_secrets_are_masked(omerodir, fake, key, caplog, dry_run):
    caplog.set_level("DEBUG")
    write_config(omerodir, {key: "old-" + SECRET})
    ret = omero_state.config_managed("cfg", properties={key: SECRET})
    assert ret["changes"] == {key: {"old": MASK, "new": MASK}}
    assert SECRET not in json.dumps(ret)
    assert SECRET not in caplog.text
    if not dry_run:
        assert read_profile(omerodir)[key] == SECRET
    ret = omero_state.config_absent(key)
    assert SECRET not in json.dumps(ret)
    if not dry_run:
        assert ret["changes"] == {key: {"old": MASK, "new": None}}


def test_pillar_secret_keys_are_masked(omerodir, fake, caplog, dry_run):
    caplog.set_level("DEBUG")
    ret = omero_state.config_managed(
        "cfg", properties={"omero.web.my_token": SECRET}, secret_keys=["omero.web.my_token"]
    )
    assert ret["changes"] == {"omero.web.my_token": {"old": None, "new": MASK}}
    assert SECRET not in json.dumps(ret) and SECRET not in caplog.text


def test_url_passwords_are_masked_and_the_rest_shown(omerodir, fake, caplog, dry_run):
    caplog.set_level("DEBUG")
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                          "LOCATION": "redis://:" + SECRET + "@127.0.0.1:6379/0"}}
    ret = omero_state.config_managed("cfg", properties={"omero.web.caches": caches})
    shown = ret["changes"]["omero.web.caches"]["new"]["default"]
    assert shown["LOCATION"] == "redis://:" + MASK + "@127.0.0.1:6379/0"
    assert shown["BACKEND"] == "django_redis.cache.RedisCache"
    assert SECRET not in json.dumps(ret) and SECRET not in caplog.text


def test_a_boolean_named_password_is_shown(omerodir, fake, dry_run):
    ret = omero_state.config_set("omero.web.show_forgot_password", False)
    assert ret["changes"] == {"omero.web.show_forgot_password": {"old": None, "new": False}}


def test_secret_masked_when_newly_set(omerodir, fake, dry_run):
    ret = omero_state.config_set("omero.web.secret_key", SECRET)
    assert ret["changes"] == {"omero.web.secret_key": {"old": None, "new": MASK}}


def test_non_secret_not_masked(omerodir, fake, dry_run):
    ret = omero_state.config_set("omero.web.passthrough_mode", "on")
    assert ret["changes"] == {"omero.web.passthrough_mode": {"old": None, "new": "on"}}


def test_execution_failure_is_result_false(omerodir, fake, dry_run):
    fake.fail = (113, f"Cannot open config.xml: value {SECRET} rejected")
    ret = omero_state.config_managed("cfg", properties={"omero.web.secret_key": SECRET})
    if dry_run:
        assert ret["result"] is None  # nothing is run in test mode
        return
    assert ret["result"] is False
    assert "Cannot open config.xml" in ret["comment"]
    assert SECRET not in ret["comment"] and MASK in ret["comment"]
    assert ret["changes"] == {}


def test_invalid_arguments_are_result_false(fake, dry_run):
    ret = omero_state.config_managed("cfg", properties={"not a key": 1})
    assert ret["result"] is False
    assert "Illegal property name" in ret["comment"]
    ret = omero_state.config_set("omero.web.x", None)
    assert ret["result"] is False


def test_read_back_mismatch_is_result_false(omerodir, fake, dry_run):
    fake.write = False
    ret = omero_state.config_set("omero.web.prefix", "/omero")
    if dry_run:
        assert ret["result"] is None
    else:
        assert ret["result"] is False
        assert "omero.web.prefix" in ret["comment"]


def test_read_back_is_checked_by_the_state(omerodir, fake, monkeypatch):
    """Even if the execution module's own check passed, the state re-plans."""
    real_plan = omero_state.__salt__["omero.config_plan"]
    calls = []

    def plan_after_write(**kwargs):
        calls.append(kwargs)
        result = real_plan(**kwargs)
        if len(calls) == 2:
            return {"omero.web.prefix": {"old": "/x", "new": "/omero"}}
        return result

    monkeypatch.setitem(omero_state.__salt__, "omero.config_plan", plan_after_write)
    ret = omero_state.config_set("omero.web.prefix", "/omero")
    assert ret["result"] is False and "read back differ" in ret["comment"]


def test_config_appended_and_absent(omerodir, fake, dry_run):
    write_config(omerodir, {"omero.web.apps": '["a"]', "omero.web.debug": "true"})
    ret = omero_state.config_appended("omero.web.apps", ["a", "b"])
    assert ret["changes"] == {"omero.web.apps": {"old": ["a"], "new": ["a", "b"]}}
    ret = omero_state.config_appended("omero.web.apps", "a")
    assert ret["result"] is True and ret["changes"] == {}
    ret = omero_state.config_absent("omero.web.debug")
    assert ret["changes"] == {"omero.web.debug": {"old": True, "new": None}}
    ret = omero_state.config_absent("omero.web.never")
    assert ret["result"] is True and ret["changes"] == {}


# ---------------------------------------------------------------- nginx_config


def nginx_calls(fake):
    return [cmd for cmd in fake.commands if cmd[1:3] == ["web", "config"]]


def test_nginx_generates_then_skips(tmp_path, omerodir, fake, file_managed, dry_run):
    target = tmp_path / "omeroweb.conf"
    ret = omero_state.nginx_config(str(target), http=80, servername="omero.example.org", max_body_size=0)
    assert_contract(ret, str(target))
    assert len(nginx_calls(fake)) == 1
    assert nginx_calls(fake)[0][3:] == ["nginx", "--http", "80", "--servername", "omero.example.org", "--max-body-size", "0"]
    call = file_managed.calls[-1]
    assert call["mode"] == "0644"
    assert "omero-web-formula-fingerprint: inputs=" in call["contents"]
    assert call["contents"].endswith("server { }\n")
    if dry_run:
        assert ret["result"] is None and not target.exists()
        return
    assert ret["result"] is True and ret["changes"]
    # same inputs: no omero process, no change
    ret = omero_state.nginx_config(str(target), http=80, servername="omero.example.org", max_body_size=0)
    assert ret["result"] is True and ret["changes"] == {}
    assert len(nginx_calls(fake)) == 1
    assert "omero not run" in ret["comment"]


@pytest.mark.parametrize(
    "change",
    ["prefix", "port", "argument", "version", "hand_edit", "omerodir_prop_unrelated"],
)
def test_nginx_regenerates_when_inputs_change(tmp_path, omerodir, venv, fake, change, opts):
    target = tmp_path / "omeroweb.conf"
    write_config(omerodir, {"omero.web.prefix": "/omero", "omero.web.debug": "false"})
    omero_state.nginx_config(str(target), http=80)
    assert target.exists() or opts["test"]
    if opts["test"]:
        pytest.skip("the file is not written in test mode")
    kwargs = {"http": 80}
    if change == "prefix":
        write_config(omerodir, {"omero.web.prefix": "/web", "omero.web.debug": "false"})
    elif change == "port":
        write_config(
            omerodir,
            {"omero.web.prefix": "/omero", "omero.web.debug": "false", "omero.web.application_server.port": "4090"},
        )
    elif change == "argument":
        kwargs["http"] = 8080
    elif change == "version":
        meta = next(venv.glob("lib/*/site-packages/omero_web-*.dist-info")) / "METADATA"
        meta.write_text("Name: omero-web\nVersion: 5.34.0\n")
    elif change == "hand_edit":
        target.write_text(target.read_text().replace("server { }", "server { listen 81; }"))
    elif change == "omerodir_prop_unrelated":
        write_config(omerodir, {"omero.web.prefix": "/omero", "omero.web.debug": "true"})
    omero_state.nginx_config(str(target), **kwargs)
    expected = 1 if change == "omerodir_prop_unrelated" else 2
    assert len(nginx_calls(fake)) == expected
    assert "server { listen 81; }" not in target.read_text()


def test_nginx_location_only_and_owner(tmp_path, fake, file_managed, dry_run):
    target = tmp_path / "omero-web-location.include"
    omero_state.nginx_config(str(target), location_only=True, user="www-data", group="adm", mode="0640")
    assert nginx_calls(fake)[0][3] == "nginx-location"
    call = file_managed.calls[-1]
    assert (call["user"], call["group"], call["mode"]) == ("www-data", "adm", "0640")
    assert "`omero web config nginx-location`" in call["contents"]


def test_nginx_failure(tmp_path, fake, dry_run):
    fake.fail = (678, "Port conflict: HTTP(4080) and wsgi(4080).")
    ret = omero_state.nginx_config(str(tmp_path / "x.conf"), http=4080)
    assert "Port conflict" in ret["comment"]
    assert ret["result"] is (None if dry_run else False)
    assert not (tmp_path / "x.conf").exists()


def test_nginx_bad_argument_fails_even_in_test_mode(tmp_path, fake, dry_run):
    ret = omero_state.nginx_config(str(tmp_path / "x.conf"), http="eighty")
    assert ret["result"] is False
    assert fake.calls == []


def test_fingerprint_is_stable_and_sensitive():
    base = {"a": 1, "properties": {"omero.web.prefix": None}}
    assert omero_state._fingerprint(base) == omero_state._fingerprint(dict(reversed(list(base.items()))))
    assert omero_state._fingerprint(base) != omero_state._fingerprint({"a": 1, "properties": {"omero.web.prefix": "/"}})
    assert omero_state._body_hash("x") == hashlib.sha256(b"x").hexdigest()[:32]


def test_virtual_needs_execution_module():
    assert omero_state.__virtual__() == "omero"
    saved = dict(omero_state.__salt__)
    try:
        omero_state.__salt__.clear()
        assert omero_state.__virtual__()[0] is False
    finally:
        omero_state.__salt__.update(saved)



def test_dry_run_on_a_fresh_host_predicts_every_property(omerodir, fake, opts, venv):
    """Before the user/venv exist (a first apply with test=True), the state
    predicts the first write instead of failing."""
    opts["test"] = True
    kwargs = {
        "properties": {"omero.web.prefix": "/omero", "omero.web.secret_key": "s3cret"},
        "appends": {"omero.web.apps": ["omero_figure"]},
        "user": "no-such-user-omero-web",
    }
    ret = omero_state.config_managed("cfg", **kwargs)
    assert ret["result"] is None
    assert ret["changes"] == {
        "omero.web.prefix": {"old": None, "new": "/omero"},
        "omero.web.secret_key": {"old": None, "new": "********"},
        "omero.web.apps": {"old": None, "new": ["omero_figure"]},
    }
    assert "s3cret" not in ret["comment"]
    assert fake.calls == []
    # a real run still fails clearly
    opts["test"] = False
    ret = omero_state.config_managed("cfg", **kwargs)
    assert ret["result"] is False and "no-such-user-omero-web" in ret["comment"]
