"""
Unit tests of the ``omero`` execution module (``_modules/omero.py``).

The module's dunders come from pytest-salt-factories' loader mock
(``configure_loader_modules``), with Salt's real utility loader as
``__utils__``. config.xml is a real file in ``tmp_path`` (the module reads it
in-process); only ``cmd.run_all`` - the omero process - is replaced, by a
fake that behaves like the real venv programs (unit_support.FakeOmero).
The real omero CLI is exercised in ``test/functional``.
"""

import json

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from unit_support import FORMULA, MIDDLEWARE_DEFAULT, USER, install_dist, read_profile, write_config

omero = FORMULA.omero
WHITENOISE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}


@pytest.fixture
def context():
    return {}


@pytest.fixture
def configure_loader_modules(fake, venv, omerodir, context, utils):
    pillar = {"omero_web": {"user": USER, "omerodir": str(omerodir), "venv": str(venv)}}
    return {
        omero: {
            "__salt__": {"cmd.run_all": fake},
            "__pillar__": pillar,
            "__context__": context,
            "__opts__": {"test": False},
            "__utils__": utils,
        }
    }


# ---------------------------------------------------------------- reading


def test_read_active_profile(omerodir):
    write_config(
        omerodir,
        {"omero.web.prefix": "/p"},
        profile="other",
        active_extra={"omero.web.prefix": "/stale-copy"},
    )
    assert omero.config_get("omero.web.prefix") == "/p"
    assert omero.config_get_all() == {"omero.web.prefix": "/p"}


def test_read_missing_config_is_empty(tmp_path):
    assert omero.config_get_all(omerodir=str(tmp_path / "nowhere")) == {}
    assert omero.config_get("omero.web.prefix", omerodir=str(tmp_path)) is None


def test_read_broken_config_raises(omerodir):
    grid = omerodir / "etc" / "grid"
    grid.mkdir(parents=True)
    (grid / "config.xml").write_text("<icegrid><properties")
    with pytest.raises(CommandExecutionError, match="Cannot parse"):
        omero.config_get_all()


def test_get_decodes_unless_raw(omerodir):
    write_config(omerodir, {"omero.web.server_list": '[["h", 4064, "o"]]', "omero.web.debug": "True"})
    assert omero.config_get("omero.web.server_list") == [["h", 4064, "o"]]
    assert omero.config_get("omero.web.debug") is True
    assert omero.config_get("omero.web.debug", raw=True) == "True"
    assert "omero.config.version" not in omero.config_get_all(raw=True)


# ---------------------------------------------------------------- planning


def test_noop_plan_spawns_nothing(omerodir, fake, context):
    write_config(
        omerodir,
        {
            "omero.web.login_redirect": '{"redirect": ["webindex"], "viewname": "load_template"}',
            "omero.web.debug": "True",
            "omero.web.application_server.port": "4080",
            "omero.web.apps": '["omero_figure"]',
        },
    )
    plan = omero.config_plan(
        properties={
            "omero.web.login_redirect": {"viewname": "load_template", "redirect": ["webindex"]},
            "omero.web.debug": True,
            "omero.web.application_server.port": 4080,
        },
        appends={"omero.web.apps": ["omero_figure"]},
        prune=False,
    )
    assert plan == {}
    assert fake.calls == []
    assert context.get("omero.processes", 0) == 0
    assert omero.config_batch(properties={"omero.web.debug": "true"}) == {}
    assert fake.calls == []


def test_prune_resets_appended_lists_to_default_plus_declared(omerodir, fake, context):
    stale = {"index": 5, "class": "no_such.Middleware"}
    current = MIDDLEWARE_DEFAULT + [stale, {"index": 0, "class": "w.W"}]
    write_config(omerodir, {"omero.web.middleware": json.dumps(current)})
    appends = {"omero.web.middleware": [{"index": 0, "class": "w.W"}]}
    plan = omero.config_plan(appends=appends, prune=True)
    assert plan["omero.web.middleware"]["new"] == MIDDLEWARE_DEFAULT + [{"index": 0, "class": "w.W"}]
    # without prune, append --set semantics: nothing to do
    assert omero.config_plan(appends=appends) == {}


def test_default_lists_are_kept_on_disk_per_omero_web_version(omerodir, fake, venv, tmp_path):
    install_dist(venv, "omero-web", "5.33.2")
    cachedir = tmp_path / "cache"
    omero.__opts__["cachedir"] = str(cachedir)
    try:
        appends = {"omero.web.middleware": [{"index": 0, "class": "w.W"}]}
        omero.config_plan(appends=appends)
        assert len(fake.calls) == 1  # read OMERO.web's defaults once
        omero.__context__.clear()  # a new salt-call run
        plan = omero.config_plan(appends=appends)
        assert len(fake.calls) == 1  # ...then from the minion's cachedir
        assert plan["omero.web.middleware"]["new"] == MIDDLEWARE_DEFAULT + [{"index": 0, "class": "w.W"}]
        assert list((cachedir / "omero").glob("defaults-*-5.33.2.json"))
    finally:
        omero.__opts__.pop("cachedir", None)


def test_plan_set_unset_prune(omerodir, fake):
    write_config(
        omerodir,
        {"omero.web.prefix": "/old", "omero.web.stale": "x", "omero.web.gone": "y", "omero.other": "z"},
    )
    plan = omero.config_plan(
        properties={"omero.web.prefix": "/omero", "omero.web.new": [1, 2]},
        unsets=["omero.web.gone", "omero.web.never_set"],
        prune=True,
    )
    assert plan == {
        "omero.web.prefix": {"old": "/old", "new": "/omero"},
        "omero.web.new": {"old": None, "new": [1, 2]},
        "omero.web.gone": {"old": "y", "new": None},
        "omero.web.stale": {"old": "x", "new": None},
    }
    assert fake.calls == []


def test_plan_property_none_means_unset(omerodir):
    write_config(omerodir, {"omero.web.debug": "true"})
    assert omero.config_plan(properties={"omero.web.debug": None}) == {
        "omero.web.debug": {"old": True, "new": None}
    }


def test_append_to_existing_list(omerodir, fake):
    write_config(omerodir, {"omero.web.apps": '["omero_iviewer"]'})
    plan = omero.config_plan(appends={"omero.web.apps": ["omero_figure", "omero_iviewer", "omero_figure"]})
    assert plan == {
        "omero.web.apps": {"old": ["omero_iviewer"], "new": ["omero_iviewer", "omero_figure"]}
    }
    assert fake.calls == []  # key is set: no default list needed


def test_append_to_unset_web_key_starts_from_default(omerodir, fake, context):
    plan = omero.config_plan(appends={"omero.web.middleware": [WHITENOISE]})
    assert plan == {
        "omero.web.middleware": {"old": None, "new": MIDDLEWARE_DEFAULT + [WHITENOISE]}
    }
    assert len(fake.calls) == 1
    cmd, kwargs = fake.calls[0]
    assert cmd[0] == kwargs["env"]["PATH"].split(":")[0] + "/python"
    assert fake.program(cmd) == "default_lists"
    assert json.loads(kwargs["stdin"]) == {"keys": ["omero.web.middleware"]}
    # cached for the rest of the run
    omero.config_plan(appends={"omero.web.middleware": [WHITENOISE]})
    assert len(fake.calls) == 1
    assert context["omero.processes"] == 1


def test_append_default_value_to_unset_key_is_noop(omerodir, fake):
    """`omero config append --set` of a value already in the default list
    leaves the key unset."""
    assert omero.config_plan(appends={"omero.web.middleware": [MIDDLEWARE_DEFAULT[0]]}) == {}


def test_append_to_unset_non_web_key_starts_empty(omerodir, fake):
    assert omero.config_plan(appends={"omero.other.list": ["a"]}) == {
        "omero.other.list": {"old": None, "new": ["a"]}
    }
    assert fake.calls == []


def test_removals(omerodir, fake):
    write_config(omerodir, {"omero.web.apps": '["a", "b", "a"]'})
    assert omero.config_plan(removals={"omero.web.apps": "a"}) == {
        "omero.web.apps": {"old": ["a", "b", "a"], "new": ["b"]}
    }
    assert omero.config_plan(removals={"omero.web.apps": ["zzz"]}) == {}
    # from the built-in default on an unset omero.web.* key
    plan = omero.config_plan(removals={"omero.web.middleware": [MIDDLEWARE_DEFAULT[1]]})
    assert plan == {"omero.web.middleware": {"old": None, "new": MIDDLEWARE_DEFAULT[:1]}}


def test_append_to_non_list_raises(omerodir):
    write_config(omerodir, {"omero.web.prefix": "/omero", "omero.web.x": "{}"})
    with pytest.raises(CommandExecutionError, match="No JSON object"):
        omero.config_plan(appends={"omero.web.prefix": ["a"]})
    with pytest.raises(CommandExecutionError, match="not a list"):
        omero.config_plan(appends={"omero.web.x": ["a"]})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"properties": {"bad key": 1}},
        {"properties": {"omero.config.profile": "x"}},
        {"properties": ["omero.web.prefix"]},
        {"properties": {"omero.web.x": object()}},
        {"properties": {"omero.web.apps": []}, "appends": {"omero.web.apps": ["a"]}},
        {"unsets": ["omero.web.apps"], "removals": {"omero.web.apps": ["a"]}},
        {"appends": {"omero.web.apps": ["a"]}, "removals": {"omero.web.apps": ["a"]}},
        {"unsets": 3},
    ],
)
def test_plan_bad_arguments(kwargs, fake):
    with pytest.raises(SaltInvocationError):
        omero.config_plan(**kwargs)
    assert fake.calls == []


# ---------------------------------------------------------------- writing


def test_batch_one_process_for_all_changes(omerodir, fake, context, venv):
    write_config(omerodir, {"omero.web.prefix": "/old", "omero.web.apps": '["a"]', "omero.web.stale": "1"})
    changes = omero.config_batch(
        properties={f"omero.web.k{i}": i for i in range(20)} | {"omero.web.prefix": "/omero"},
        appends={"omero.web.apps": ["b"]},
        prune=True,
    )
    assert len(changes) == 23
    assert len(fake.calls) == 2  # the defaults of omero.web.apps (prune), then the write
    cmd, kwargs = fake.calls[-1]
    assert cmd[:2] == [str(venv / "bin" / "python"), "-c"]
    assert fake.program(cmd) == "write_config"
    assert kwargs["runas"] == USER
    assert kwargs["python_shell"] is False
    assert kwargs["umask"] == "027"
    assert kwargs["env"]["OMERODIR"] == str(omerodir)
    assert kwargs["env"]["PATH"].startswith(str(venv / "bin") + ":")
    assert kwargs["output_loglevel"] == "quiet"
    # values travel on stdin, not on the command line
    assert "/omero" not in " ".join(cmd)
    request = json.loads(kwargs["stdin"])
    assert request["expected"]["omero.web.prefix"] == "/old"
    assert request["new"]["omero.web.stale"] is None
    after = read_profile(omerodir)
    assert after["omero.web.prefix"] == "/omero"
    # prune: the list is OMERO.web's default ([]) plus what is declared
    assert json.loads(after["omero.web.apps"]) == ["b"]
    assert "omero.web.stale" not in after
    assert context["omero.processes"] == 2
    # and now it is a no-op
    assert omero.config_batch(properties={"omero.web.prefix": "/omero"}) == {}
    assert len(fake.calls) == 2


def test_batch_read_back_mismatch_raises(omerodir, fake):
    fake.write = False  # the writer "succeeds" but the file does not change
    with pytest.raises(CommandExecutionError, match="does not hold.*omero.web.prefix"):
        omero.config_set("omero.web.prefix", "/omero")


def test_batch_failure_carries_stderr(omerodir, fake):
    fake.fail = (113, "Cannot open /x/config.xml: [Errno 13] Permission denied")
    with pytest.raises(CommandExecutionError, match="Permission denied") as exc:
        omero.config_set("omero.web.prefix", "/omero")
    assert "exit code 113" in str(exc.value)


def test_single_key_functions(omerodir, fake):
    assert omero.config_set("omero.web.debug", True) == {
        "omero.web.debug": {"old": None, "new": True}
    }
    assert read_profile(omerodir)["omero.web.debug"] == "true"
    assert omero.config_set("omero.web.debug", "True") == {}
    assert omero.config_append("omero.web.ui.top_links", ["Help", "https://x/", {"target": "new"}]) == {
        "omero.web.ui.top_links": {"old": None, "new": [["Help", "https://x/", {"target": "new"}]]}
    }
    assert omero.config_append("omero.web.ui.top_links", ["Help", "https://x/", {"target": "new"}]) == {}
    assert omero.config_remove("omero.web.ui.top_links", ["Help", "https://x/", {"target": "new"}]) == {
        "omero.web.ui.top_links": {"old": [["Help", "https://x/", {"target": "new"}]], "new": []}
    }
    assert omero.config_unset("omero.web.debug") == {"omero.web.debug": {"old": True, "new": None}}
    assert omero.config_unset("omero.web.debug") == {}
    with pytest.raises(SaltInvocationError):
        omero.config_set("omero.web.debug", None)


# ---------------------------------------------------------------- runner


def test_defaults_from_pillar_then_builtin(configure_loader_modules, venv, omerodir):
    assert omero.paths() == {"user": USER, "omerodir": str(omerodir), "venv": str(venv)}
    assert omero.paths(user="u2", omerodir="/o", venv="/v") == {"user": "u2", "omerodir": "/o", "venv": "/v"}
    omero.__pillar__.clear()
    assert omero.paths() == {
        "user": "omero-web",
        "omerodir": "/opt/omero/web/omero-web",
        "venv": "/opt/omero/web/venv3",
    }
    with pytest.raises(SaltInvocationError):
        omero.paths(omerodir="relative/dir")


def test_refuses_root(fake):
    with pytest.raises(SaltInvocationError, match="root"):
        omero.config_set("omero.web.prefix", "/x", user="root")
    assert fake.calls == []


def test_unknown_user(fake):
    with pytest.raises(CommandExecutionError, match="not available"):
        omero.config_set("omero.web.prefix", "/x", user="no-such-user-omero-test")
    assert fake.calls == []


def test_missing_venv(tmp_path, fake):
    with pytest.raises(CommandExecutionError, match="not found"):
        omero.config_set("omero.web.prefix", "/x", venv=str(tmp_path / "novenv"))
    assert fake.calls == []


def test_web_config_nginx_arguments(fake, venv):
    assert omero.web_config_nginx(http=8080, servername="omero.example.org", max_body_size="10m") == "server { }"
    cmd, kwargs = fake.calls[-1]
    assert cmd == [
        str(venv / "bin" / "omero"),
        "web", "config", "nginx",
        "--http", "8080",
        "--servername", "omero.example.org",
        "--max-body-size", "10m",
    ]
    assert kwargs["runas"] == USER
    omero.web_config_nginx(location=True)
    assert fake.calls[-1][0][1:] == ["web", "config", "nginx-location"]


@pytest.mark.parametrize(
    "kwargs",
    [{"http": "eighty"}, {"http": 0}, {"http": 70000}, {"http": True}, {"servername": "a; b"}, {"max_body_size": "10 MB"}],
)
def test_web_config_nginx_bad_arguments(kwargs, fake):
    with pytest.raises(SaltInvocationError):
        omero.web_config_nginx(**kwargs)
    assert fake.calls == []


def test_version_from_dist_info(venv, fake):
    assert omero.version() is None
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "omero_web-5.33.2.dist-info").mkdir(parents=True)
    (site / "omero_web-5.33.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: omero-web\nVersion: 5.33.2\n\nVersion: bogus\n"
    )
    (site / "omero_py-5.23.0.dist-info").mkdir()
    (site / "omero_py-5.23.0.dist-info" / "METADATA").write_text("Name: omero-py\nVersion: 5.23.0\n")
    assert omero.version() == "5.33.2"
    assert fake.calls == []


def test_failure_message_is_the_cli_stderr(fake):
    fake.fail = (682, "ERROR: OMERODIR not set")
    with pytest.raises(CommandExecutionError, match="OMERODIR not set"):
        omero.clearsessions()


def test_no_values_logged(omerodir, fake, caplog):
    caplog.set_level("DEBUG")
    omero.config_batch(properties={"omero.web.secret_key": "s3cr3t-value"})
    assert read_profile(omerodir)["omero.web.secret_key"] == "s3cr3t-value"
    assert "s3cr3t-value" not in caplog.text
    cmd, kwargs = fake.calls[-1]
    assert "s3cr3t-value" not in " ".join(cmd)


def test_web_failure_without_reason_is_explained(fake):
    """`omero web` dies with "Error printing text" when omeroweb.settings
    cannot load; the module asks the venv why, once."""
    fake.cli_fail = (170, "Error printing text")
    fake.settings_error = "ValueError: Unknown server type: bogus."
    with pytest.raises(CommandExecutionError, match="Error printing text.*Unknown server type: bogus"):
        omero.web_config_nginx()
    assert len(fake.calls) == 2
    fake.cli_fail = (678, "Port conflict: HTTP(4080) and wsgi(4080).")
    fake.calls.clear()
    with pytest.raises(CommandExecutionError, match="Port conflict"):
        omero.web_config_nginx(http=4080)
    assert len(fake.calls) == 1


def test_get_all_masks_secrets_by_the_one_rule_unless_asked(omerodir):
    write_config(
        omerodir,
        {
            "omero.web.secret_key": "k3y",
            "omero.db.pass": "pw",
            "omero.web.show_forgot_password": "true",
            "omero.web.my_token": "t0k3n",
            "omero.web.caches": '{"default": {"LOCATION": "redis://:pw2@127.0.0.1:6379/0"}}',
            "omero.web.prefix": "/p",
        },
    )
    assert omero.config_get_all(secret_keys=["omero.web.my_token"]) == {
        "omero.web.secret_key": "********",
        "omero.db.pass": "********",
        # a boolean whose name ends in "password" is no secret
        "omero.web.show_forgot_password": True,
        "omero.web.my_token": "********",
        "omero.web.caches": {"default": {"LOCATION": "redis://:********@127.0.0.1:6379/0"}},
        "omero.web.prefix": "/p",
    }
    assert omero.config_get_all(show_password=True)["omero.web.secret_key"] == "k3y"
    assert omero.config_get("omero.db.pass") == "pw"
