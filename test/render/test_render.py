"""
The formula rendered with each supported OS's grains (conftest.py): what must
be there and what must not, for pillar.example and its variants.
"""

import json
import os
import re

import pytest

from render_support import BUILT_WHEELS, OSES, REPO, VARIANTS, pillar_example

WALKTHROUGH_CENTOS7_WHEEL = (
    "https://github.com/ome/zeroc-ice-py-centos7/releases/download/0.2.1/"
    "zeroc_ice-3.6.5-cp36-cp36m-linux_x86_64.whl"
)
PYTHON = {
    "centos7": "3.6",
    "rocky9": "3.9",
    "alma9": "3.9",
    "rocky10": "3.12",
    "alma10": "3.12",
    "debian12": "3.11",
    "debian13": "3.13",
    "ubuntu2204": "3.10",
    "ubuntu2404": "3.12",
    "ubuntu2604": "3.14",
}
REDHAT = {"centos7", "rocky9", "alma9", "rocky10", "alma10"}
#: The local Redis's package, unit, config file and group per platform (EL10:
#: Valkey, Redis's BSD-licensed fork, in place of Redis).
REDIS = {
    "centos7": ("redis", "redis", "/etc/redis.conf", "redis"),
    "rocky9": ("redis", "redis", "/etc/redis/redis.conf", "redis"),
    "alma9": ("redis", "redis", "/etc/redis/redis.conf", "redis"),
    "rocky10": ("valkey", "valkey", "/etc/valkey/valkey.conf", "valkey"),
    "alma10": ("valkey", "valkey", "/etc/valkey/valkey.conf", "valkey"),
}
SECRET = pillar_example()["omero_web"]["config"]["omero.web.secret_key"]

VENV = "omero_web-venv-omero_venv-present"
PIP = "omero_web-venv-omero_venv-packages_installed"
CONFIG = "omero_web-config-omero-config_managed"
NGINX_CONF = "omero_web-nginx-config-omero-nginx_config"
NGINX_SERVICE = "omero_web-nginx-service-omero_web-nginx_running"
UNIT = "omero_web-service-file-managed"
SERVICE = "omero_web-service-omero_web-service_running"
HEALTH = "omero_web-healthcheck-cmd-run"
TIMER = "omero_web-clearsessions-service-running"
GENERATED = "@@omero-web-secret:/etc/omero-web/redis-password@@"
REDIS_PKG = "omero_web-redis-package-pkg-installed"
REDIS_CONF_STATE = "omero_web-redis-config-omero_web-redis_directives"
REDIS_RESET = "omero_web-redis-service-cmd-run"
REDIS_SERVICE = "omero_web-redis-service-service-running"
REDIS_CONF = {name: REDIS.get(name, (None, None, "/etc/redis/redis.conf"))[2] for name in PYTHON}


def _props(render):
    return render.args(CONFIG)["properties"]


def _appends(render):
    return render.args(CONFIG)["appends"]


def _pip(render):
    return render.args(PIP)["pkgs"]


def _by_fun(render, fun, ids=None):
    ids = render.applied() if ids is None else ids
    return sorted(sid for sid in ids if render.states[sid]["fun"] == fun)


def _icepy_wheel(render):
    """The wheel that the venv state pip-installs."""
    return render.args(VENV)["wheel"]


def _no_run_checks(render):
    """No creates/onlyif/unless outside clean.sls (see libcmd.jinja)."""
    for sid in render.applied():
        for check in ("creates", "onlyif", "unless"):
            assert check not in render.states[sid]["args"], (sid, check)


def _health_url(render):
    return render.args(HEALTH)["name"].split()[2]


@pytest.fixture(params=sorted(OSES))
def os_render(request, renders):
    render = renders[request.param]
    assert render.ok, render.errors[:1] or render.stderr[-2000:]
    return request.param, render


# --------------------------------------------------------------------------
# the five OS lines with pillar.example
# --------------------------------------------------------------------------


def test_state_ids_follow_the_layout(os_render):
    """omero_web-<sls path>-<module>-<function>[-suffix], every sls in a folder."""
    _, render = os_render
    for sid, state in render.states.items():
        sls = state["sls"]
        assert sls.startswith("omero_web.")
        module, function = state["fun"].split(".")
        prefix = "omero_web-{}-{}-{}".format(sls[len("omero_web."):].replace(".", "-"),
                                             module, function)
        assert sid == prefix or sid.startswith(prefix + "-"), (sid, prefix)


def test_python_venv_and_icepy_wheel_per_os(os_render):
    name, render = os_render
    version = PYTHON[name]
    tag = "cp" + version.replace(".", "")
    assert render.mapdata["python"] == {"executable": "/usr/bin/python3", "version": version}
    venv = render.args(VENV)
    assert venv["name"] == "/opt/omero/web/venv3"
    assert venv["python"] == "/usr/bin/python3"
    assert venv["ice_version"] == "3.6.5" and venv["upgrade_pip"] is True
    wheel = _icepy_wheel(render)
    assert re.search(r"/zeroc_ice-3\.6\.5-{0}-{0}m?-".format(tag), wheel), wheel
    if name == "centos7":
        assert wheel == WALKTHROUGH_CENTOS7_WHEEL
    if name in ("rocky10", "alma10", "ubuntu2404"):
        # Glencoe's generic wheel for cp312 (manylinux_2_28)
        assert wheel.endswith("cp312-cp312-manylinux_2_28_x86_64.whl"), wheel
    if name in BUILT_WHEELS:
        # no published wheel: the one a site builds (the render's pillar names it)
        assert wheel == BUILT_WHEELS[name]


def test_platforms_without_a_published_wheel_say_so(renders):
    render = renders["no_wheel_ubuntu2604"]
    assert not render.ok
    assert "omero_web:ice:wheel: required: no IcePy wheel is known for this platform" in (
        "\n".join(str(e) for e in render.errors))


def test_no_costly_run_checks(os_render):
    _no_run_checks(os_render[1])


def test_omero_web_cap_only_on_centos7(os_render):
    name, render = os_render
    requirement = _pip(render)[0]
    if name == "centos7":
        assert requirement == "omero-web>=5.6.1,<5.23"
    else:
        assert requirement == "omero-web>=5.6.1"


def test_one_pip_state_with_everything_the_pillar_needs(os_render):
    _, render = os_render
    assert _by_fun(render, "omero_venv.packages_installed") == [PIP]
    assert not _by_fun(render, "pip.installed")
    assert render.args(PIP)["venv"] == "/opt/omero/web/venv3"
    pkgs = _pip(render)
    for wanted in ("whitenoise", "django-redis", "django-cors-headers", "omero-figure"):
        assert wanted in pkgs
    assert not any(pkg.startswith("gevent") for pkg in pkgs)
    # IcePy first, then omero-web and the rest
    assert render.args(PIP)["require"] == [{"omero_venv": VENV}]


def test_prerequisite_packages(os_render):
    name, render = os_render
    pkgs = render.args("omero_web-prerequisites-pkg-installed")["pkgs"]
    assert "unzip" in pkgs and "python3" in pkgs
    if name in REDHAT:
        assert "python3-venv" not in pkgs
    else:
        assert "python3-venv" in pkgs
    repos = "omero_web-prerequisites-pkg-installed-repos"
    if name == "centos7":
        assert render.args(repos)["pkgs"] == ["epel-release"]
    else:
        assert repos not in render.states


def test_selinux_only_on_redhat_with_selinux_enabled(os_render):
    name, render = os_render
    selinux = {sid for sid in render.applied() if render.states[sid]["sls"] == "omero_web.selinux"}
    if OSES[name]["os_family"] == "RedHat" and OSES[name]["selinux"]["enabled"]:
        pkg = "policycoreutils-python" if name == "centos7" else "policycoreutils-python-utils"
        assert render.args("omero_web-selinux-pkg-installed")["pkgs"] == [pkg]
        booleans = render.args("omero_web-selinux-selinux-boolean")
        assert booleans["names"] == ["httpd_read_user_content", "httpd_enable_homedirs"]
        assert booleans["value"] is True and booleans["persist"] is True
        port = render.args("omero_web-selinux-selinux-port_policy_present")
        assert port["name"] == "tcp/4080" and port["sel_type"] == "http_port_t"
        assert render.mapdata["derived"]["selinux"] is True
    else:
        assert not selinux
        assert not any("selinux" in state["fun"] for state in render.states.values())


def test_local_redis_per_os(os_render):
    name, render = os_render
    pkg, unit, _, group = REDIS.get(name, ("redis-server", "redis-server", None, "redis"))
    expected = unit
    assert render.args(REDIS_PKG)["name"] == pkg
    assert render.mapdata["redis"]["group"] == group
    service = render.args(REDIS_SERVICE)
    assert service["name"] == expected and service["enable"] is True
    assert expected + ".service" in render.args(UNIT)["context"]["after"]
    # pillar.example's redis://127.0.0.1:6379/0: port 6379 in the platform's
    # redis.conf (what the package says already), Redis restarts if it changes
    conf = render.args(REDIS_CONF_STATE)
    assert conf["name"] == REDIS_CONF[name]
    # ... and a password: generated once on the minion, read at apply time
    assert conf["directives"] == {"port": 6379, "requirepass": GENERATED}
    assert conf["package_defaults"] == {"port": 6379}
    assert render.args("omero_web-redis-password-omero_web-secret_present")["name"] == (
        "/etc/omero-web/redis-password")
    assert service["watch"] == [{"sls": "omero_web.redis.config"}]
    assert {"cmd": REDIS_RESET} in service["require"]
    assert render.args(REDIS_RESET)["onchanges"] == [{"sls": "omero_web.redis.config"}]
    assert render.mapdata["derived"]["redis"]["port"] == 6379
    assert "omero_web-redis-selinux-selinux-port_policy_present" not in render.states
    assert "omero_web-redis-config-group-present" not in render.states


def test_nginx_server_and_default_server_per_os(os_render):
    name, render = os_render
    conf = render.args(NGINX_CONF)
    assert conf["name"] == "/etc/nginx/conf.d/omero-web.conf"
    assert conf["http"] == 80 and conf["servername"] == "omero.example.org"
    assert conf.get("location_only") in (None, False)
    assert conf["omero_user"] == "omero-web"
    assert render.args("omero_web-nginx-package-pkg-installed")["name"] == "nginx"
    group = render.args("omero_web-nginx-package-group-present")
    assert group["addusers"] == (["nginx"] if name in REDHAT else ["www-data"])
    if name in REDHAT:
        sed = render.args("omero_web-nginx-default_server-file-replace-1")
        assert sed["name"] == "/etc/nginx/nginx.conf"
        assert re.sub(sed["pattern"], sed["repl"], "    listen       80 default_server;",
                      flags=re.M) == "    listen       80; # default_server;"
        assert re.sub(sed["pattern"], sed["repl"], "    listen       80; # default_server;",
                      flags=re.M) == "    listen       80; # default_server;"
        moved = render.args("omero_web-nginx-default_server-file-rename-1")
        assert (moved["source"], moved["name"]) == (
            "/etc/nginx/conf.d/default.conf", "/etc/nginx/conf.d/default.disabled")
        assert "omero_web-nginx-default_server-file-absent" not in render.states
    else:
        assert render.args("omero_web-nginx-default_server-file-absent")["names"] == [
            "/etc/nginx/sites-enabled/default"]
        assert "omero_web-nginx-default_server-file-replace-1" not in render.states
    # server_tokens off in the server block omero generates
    assert "server_tokens off;" in _props(render)["omero.web.nginx_server_extra_config"]
    # nginx -t on every run; started, or reloaded when what it would load
    # differs from what it loaded; each nginx file is tested before it stays
    nginx = render.state(NGINX_SERVICE)
    assert nginx["fun"] == "omero_web.nginx_running"
    # only the steps that have states (Salt 3008 refuses a requisite on an
    # sls without any): no TLS here
    assert nginx["args"]["require"] == [{"sls": "omero_web.nginx." + step} for step in
                                        ("package", "default_server", "config")]
    # generated from validated properties only, in a throwaway OMERODIR
    assert conf["properties"]["omero.web.static_root"] == "/opt/omero/web/omero-web/var/static"
    assert set(conf["properties"]) == {
        "omero.web.prefix", "omero.web.static_url", "omero.web.application_server.host",
        "omero.web.application_server.port", "omero.web.nginx_server_extra_config",
        "omero.web.static_root"}


def test_user_and_omerodir(os_render):
    _, render = os_render
    assert render.args("omero_web-user-user-present")["name"] == "omero-web"
    assert render.args("omero_web-user-file-directory-omerodir")["mode"] == "0750"
    # OMERODIR's parents (which hold the venv too) stay root's
    parent = render.args("omero_web-user-file-directory-parent")
    assert parent["name"] == "/opt/omero/web" and "user" not in parent
    assert "makedirs" not in render.args("omero_web-user-file-directory-omerodir")
    tree = render.args("omero_web-user-file-directory-tree")["names"]
    paths = [next(iter(entry)) for entry in tree]
    assert "/opt/omero/web/omero-web/etc/grid" in paths
    assert "/opt/omero/web/omero-web/var/log" in paths


def test_config_is_one_state_without_shell(os_render):
    _, render = os_render
    assert _by_fun(render, "omero.config_managed") == [CONFIG]
    for state in render.states.values():
        if state["fun"] == "cmd.run":
            assert "omero config" not in state["args"]["name"]
    props = _props(render)
    assert props["omero.web.prefix"] == "/omero"
    assert props["omero.web.static_url"] == "/omero/static/"
    assert props["omero.web.server_list"] == [["localhost", 4064, "omero"]]
    assert props["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert props["omero.web.caches"]["default"]["LOCATION"] == (
        "redis://:" + GENERATED + "@127.0.0.1:6379/0")
    assert props["omero.web.allowed_hosts"] == ["omero.example.org", "localhost", "127.0.0.1",
                                                "[::1]"]
    assert props["omero.web.wsgi_workers"] == 5  # auto: 2 x 2 cores + 1
    assert props["omero.web.wsgi_threads"] == 4
    assert props["omero.web.cors_origin_whitelist"] == ["https://hostname.example.com"]
    middleware = _appends(render)["omero.web.middleware"]
    assert {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"} in middleware
    assert {"index": 0.5, "class": "corsheaders.middleware.CorsMiddleware"} in middleware
    assert {"index": 10, "class": "corsheaders.middleware.CorsPostCsrfMiddleware"} in middleware
    assert _appends(render)["omero.web.apps"] == ["omero_figure"]
    assert render.args(CONFIG)["prune"] is False


def test_service_unit_and_restart_triggers(os_render):
    name, render = os_render
    unit = render.args(UNIT)
    assert unit["name"] == "/etc/systemd/system/omero-web.service"
    assert unit["source"] == "salt://omero_web/files/default/omero-web.service.jinja"
    context = unit["context"]
    assert context["restart"] == "on-failure"
    assert context["requires"] == ["nginx.service"]
    assert (context["omerodir"], context["venv"], context["user"]) == (
        "/opt/omero/web/omero-web", "/opt/omero/web/venv3", "omero-web")
    assert context["tmpdir"] == "/opt/omero/web/omero-web/var/tmp"
    hardening = context["hardening"]
    if name == "centos7":
        assert "ProtectSystem=full" in hardening and "RestrictNamespaces=yes" not in hardening
    else:
        assert "ProtectSystem=strict" in hardening and "RestrictNamespaces=yes" in hardening
        assert hardening[-1].startswith("ReadWritePaths=/opt/omero/web/omero-web/var ")
    service = render.args(SERVICE)
    assert service["name"] == "omero-web" and service["enable"] is True
    assert service["unit_file"] == "/etc/systemd/system/omero-web.service"
    # the dry run predicts reload/restart from these; the real run from disk
    assert sorted(json.dumps(w, sort_keys=True) for w in service["watch"]) == sorted(
        json.dumps(w, sort_keys=True) for w in [
            {"module": "omero_web-service-module-run"},
            {"file": UNIT},
            {"sls": "omero_web.venv"},
            {"sls": "omero_web.config"},
        ])
    reload = render.args("omero_web-service-module-run")
    assert reload["onchanges"] == [{"file": UNIT}]


def test_healthcheck_through_nginx(os_render):
    _, render = os_render
    check = render.args(HEALTH)
    assert _health_url(render) == "http://127.0.0.1:80/omero/webclient/login/"
    probe = check["stateful"][0]["test_name"]
    assert "--host omero.example.org" in check["name"] and "--host omero.example.org" in probe
    assert "--wait 120" in check["name"] and "--wait" not in probe
    assert "--test" in probe
    assert "/opt/omero/web/omero-web/var/log/OMEROweb.log" in check["name"]
    assert {"sls": "omero_web.service"} in check["require"]


def test_clearsessions_timer(os_render):
    _, render = os_render
    units = render.args("omero_web-clearsessions-file-managed")["names"]
    assert [next(iter(unit)) for unit in units] == [
        "/etc/systemd/system/omero-web-clearsessions.service",
        "/etc/systemd/system/omero-web-clearsessions.timer",
    ]
    assert render.args("omero_web-clearsessions-file-managed")["context"]["on_calendar"] == (
        "daily")
    timer = render.args(TIMER)
    assert timer["name"] == "omero-web-clearsessions.timer" and timer["enable"] is True


def test_walkthrough_order(os_render):
    """init.sls applies the steps in the walkthrough's order."""
    name, render = os_render
    order = [
        "omero_web-user-user-present",
        "omero_web-prerequisites-pkg-installed",
        REDIS_PKG,
        VENV,
        PIP,
        CONFIG,
        NGINX_CONF,
        NGINX_SERVICE,
        SERVICE,
        TIMER,
    ]
    if render.mapdata["derived"]["selinux"]:
        order.append("omero_web-selinux-selinux-port_policy_present")
    order.append(HEALTH)
    numbers = [render.args(sid)["order"] for sid in order]
    assert numbers == sorted(numbers), list(zip(order, numbers))


def test_secret_only_in_the_config_state(os_render):
    _, render = os_render
    for sid, state in render.states.items():
        text = json.dumps(state["args"])
        if sid == CONFIG:
            assert SECRET in text
        else:
            assert SECRET not in text, sid
    assert render.mapdata["config"]["omero.web.secret_key"] == "********"
    assert render.args("omero_web-_mapdata-file-managed")["show_changes"] is False


def test_clean_undoes_in_reverse_and_keeps_packages(os_render):
    _, render = os_render
    cleaned = render.cleaned()
    assert render.args("omero_web-service-clean-service-dead")["name"] == "omero-web"
    assert render.args("omero_web-clearsessions-clean-service-dead")["name"] == (
        "omero-web-clearsessions.timer")
    assert render.args("omero_web-venv-clean-file-absent")["names"][0] == "/opt/omero/web/venv3"
    assert render.args("omero_web-user-clean-file-absent")["name"] == "/opt/omero/web/omero-web"
    assert render.args("omero_web-user-clean-user-absent")["name"] == "omero-web"
    assert "/etc/nginx/conf.d/omero-web.conf" in render.args(
        "omero_web-nginx-clean-file-absent")["names"]
    assert not _by_fun(render, "pkg.removed", cleaned)
    order = [
        "omero_web-healthcheck-clean-file-absent",
        "omero_web-clearsessions-clean-service-dead",
        "omero_web-service-clean-service-dead",
        "omero_web-nginx-clean-file-absent",
        "omero_web-venv-clean-file-absent",
        "omero_web-user-clean-user-absent",
    ]
    numbers = [render.args(sid)["order"] for sid in order]
    assert numbers == sorted(numbers)


# --------------------------------------------------------------------------
# pillar variants
# --------------------------------------------------------------------------


@pytest.fixture
def variant(renders):
    def get(name):
        render = renders[name]
        assert render.ok, render.errors[:1] or render.stderr[-2000:]
        return render
    return get


def test_prefix_unset(variant):
    render = variant("prefix_unset")
    props = _props(render)
    assert "omero.web.prefix" not in props and "omero.web.static_url" not in props
    assert _health_url(render) == "http://127.0.0.1:80/webclient/login/"


def test_sessions_file_has_no_redis(variant):
    render = variant("sessions_file")
    assert not any(render.states[sid]["sls"].startswith("omero_web.redis")
                   for sid in render.applied())
    assert "django-redis" not in _pip(render)
    assert "omero.web.caches" not in _props(render)
    assert "omero.web.session_engine" not in _props(render)
    assert "redis-server.service" not in render.args(UNIT)["context"]["after"]


def test_remote_redis_is_not_installed(variant):
    render = variant("redis_remote")
    assert not any(render.states[sid]["sls"].startswith("omero_web.redis")
                   for sid in render.applied())
    assert REDIS_CONF_STATE not in render.states and REDIS_RESET not in render.states
    redis = render.mapdata["derived"]["redis"]
    assert (redis["local"], redis["port"], redis["socket"]) == (False, None, None)
    assert "django-redis" in _pip(render)
    assert _props(render)["omero.web.caches"]["default"]["LOCATION"].endswith(
        "@redis.example.org:6379/0")
    # the password is a secret: masked in the map dump, the rest shown
    assert render.mapdata["sessions"]["redis_url"] == (
        "redis://:********@redis.example.org:6379/0")
    assert "s3cret" not in json.dumps(render.mapdata)


def test_local_redis_on_another_port(variant):
    """redis://127.0.0.1:6380/0: `port 6380` in redis.conf, then Redis restarts."""
    render = variant("redis_port")
    assert render.mapdata["derived"]["redis"]["port"] == 6380
    conf = render.args(REDIS_CONF_STATE)
    assert conf["name"] == "/etc/redis/redis.conf"
    assert conf["directives"] == {"port": 6380, "requirepass": GENERATED}
    assert conf["require"] == [{"sls": "omero_web.redis.package"}, {"sls": "omero_web.redis.password"}]
    service = render.args(REDIS_SERVICE)
    assert service["watch"] == [{"sls": "omero_web.redis.config"}]
    assert service["require"] == [{"sls": "omero_web.redis.package"}, {"cmd": REDIS_RESET}]
    reset = render.args(REDIS_RESET)
    assert reset["onchanges"] == [{"sls": "omero_web.redis.config"}]
    assert reset["name"] == (
        "systemctl stop redis-server.service && systemctl reset-failed redis-server.service")
    # Debian: no SELinux, no socket
    assert "omero_web-redis-selinux-selinux-port_policy_present" not in render.states
    assert "omero_web-redis-config-group-present" not in render.states


def test_local_redis_port_on_el9_gets_the_selinux_port_type(variant):
    render = variant("redis_port_el9")
    conf = render.args(REDIS_CONF_STATE)
    assert conf["name"] == "/etc/redis/redis.conf"
    assert conf["directives"] == {"port": 6381, "requirepass": GENERATED}
    label = render.args("omero_web-redis-selinux-selinux-port_policy_present")
    assert label["name"] == "tcp/6381" and label["sel_type"] == "redis_port_t"
    assert label["require"] == [{"sls": "omero_web.selinux"}]
    assert "omero_web-selinux-pkg-installed" in render.states  # semanage
    service = render.args(REDIS_SERVICE)
    assert {"sls": "omero_web.redis.selinux"} in service["require"]
    assert service["name"] == "redis"


def test_local_redis_port_on_centos7(variant):
    render = variant("redis_port_centos7")
    conf = render.args(REDIS_CONF_STATE)
    assert conf["name"] == "/etc/redis.conf"
    assert conf["directives"] == {"port": 6380, "requirepass": GENERATED}
    # selinux:manage false: no port label
    assert "omero_web-redis-selinux-selinux-port_policy_present" not in render.states


def test_local_redis_on_a_unix_socket(variant):
    render = variant("redis_socket")
    redis = render.mapdata["derived"]["redis"]
    assert (redis["port"], redis["socket"]) == (None, "/run/redis/redis-server.sock")
    # the TCP port is left alone
    assert render.args(REDIS_CONF_STATE)["directives"] == {
        "unixsocket": "/run/redis/redis-server.sock", "unixsocketperm": 770}
    group = render.args("omero_web-redis-config-group-present")
    assert group["name"] == "redis" and group["addusers"] == ["omero-web"]
    assert {"sls": "omero_web.user"} in group["require"]


def test_local_redis_over_tls_sets_no_port(variant):
    render = variant("redis_tls")
    assert render.mapdata["derived"]["redis"]["tls"] is True
    assert REDIS_PKG in render.states
    # no port (TLS is Redis's own setup), but a password
    assert render.args(REDIS_CONF_STATE)["directives"] == {"requirepass": GENERATED}


@pytest.mark.parametrize("name", ["redis_dry_run_fresh", "redis_dry_run_fresh_6379"])
def test_redis_dry_run_compiles_the_same_states(variant, name):
    """test=True on a host without redis.conf: the same state as a real run
    (the state predicts from the package's defaults; unit-tested)."""
    render = variant(name)
    assert render.state(REDIS_CONF_STATE)["fun"] == "omero_web.redis_directives"
    assert not _by_fun(render, "test.succeed_with_changes")


def test_gevent_vs_sync(variant):
    gevent = variant("gevent")
    assert "gevent>=0.13" in _pip(gevent)
    props = _props(gevent)
    assert props["omero.web.wsgi_worker_class"] == "gevent"
    assert props["omero.web.wsgi_worker_connections"] == 1000
    assert "omero.web.wsgi_threads" not in props
    sync = variant("debian12")
    assert _props(sync)["omero.web.wsgi_worker_class"] == "sync"
    assert "omero.web.wsgi_worker_connections" not in _props(sync)


def test_cors_allow_all_vs_whitelist(variant):
    render = variant("cors_allow_all")
    props = _props(render)
    assert props["omero.web.cors_origin_allow_all"] is True
    assert "omero.web.cors_origin_whitelist" not in props
    assert "django-cors-headers" in _pip(render)
    whitelist = _props(variant("debian12"))
    assert "omero.web.cors_origin_allow_all" not in whitelist


def test_nginx_off(variant):
    render = variant("nginx_off")
    assert not any(render.states[sid]["sls"].startswith("omero_web.nginx")
                   for sid in render.applied())
    assert render.args(UNIT)["context"]["requires"] == []
    assert _health_url(render) == "http://127.0.0.1:4080/omero/webclient/login/"
    assert "--host" not in render.args(HEALTH)["name"]
    assert {"sls": "omero_web.nginx.service"} not in render.args(SERVICE)["require"]


@pytest.mark.parametrize("name", ["location_only", "location_only_el9"])
def test_location_only(variant, name):
    render = variant(name)
    conf = render.args(NGINX_CONF)
    # root's nginx includes a file of root's, not one in OMERODIR
    assert conf["name"] == "/etc/nginx/omero-web-location.include"
    assert conf["location_only"] is True
    assert (conf["user"], conf["group"], conf["mode"]) == ("root", "root", "0644")
    assert "omero_web-nginx-config-omero_web-nginx_file" not in render.states
    assert "omero.web.nginx_server_extra_config" not in _props(render)
    assert _health_url(render) == "http://127.0.0.1:4080/omero/webclient/login/"


def test_tls(variant):
    render = variant("tls")
    files = render.args("omero_web-nginx-tls-omero_web-nginx_file")
    assert files["mode"] == "0600" and files["show_changes"] is False
    assert files["names"] == [
        {"/etc/nginx/tls/omero-web.crt": [{"source": "salt://certs/omero.crt"}]},
        {"/etc/nginx/tls/omero-web.key": [{"source": "/etc/ssl/private/omero.key"}]},
    ]
    assert render.args(NGINX_CONF)["location_only"] is True
    server = render.args("omero_web-nginx-config-omero_web-nginx_file")
    assert server["name"] == "/etc/nginx/conf.d/omero-web.conf"
    assert server["source"] == "salt://omero_web/files/default/nginx-tls.conf.jinja"
    context = server["context"]
    assert (context["port"], context["tls_port"]) == (80, 443)
    assert context["location_file"] == "/etc/nginx/omero-web-location.include"
    assert context["cert"] == "/etc/nginx/tls/omero-web.crt"
    assert context["redirect_host"] == "omero.example.org" and context["hsts"] == 0
    props = _props(render)
    assert props["omero.web.secure"] is True
    assert props["omero.web.csrf_trusted_origins"] == ["https://omero.example.org"]
    assert _health_url(render) == "https://127.0.0.1:443/omero/webclient/login/"


def test_tls_template(renders):
    """The HTTPS server: listen 443 ssl, 80 -> 301, server_tokens off."""
    import jinja2

    context = renders["tls"].args("omero_web-nginx-config-omero_web-nginx_file")["context"]
    text = jinja2.Template(
        (REPO / "omero_web/files/default/nginx-tls.conf.jinja").read_text()).render(**context)
    assert "listen 443 ssl;" in text
    # to the configured name, not the client's Host
    assert "return 301 https://omero.example.org$request_uri;" in text
    assert "ssl_session_tickets off;" in text and "ssl_ciphers ECDHE-" in text
    assert "Strict-Transport-Security" not in text
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in jinja2.Template(
        (REPO / "omero_web/files/default/nginx-tls.conf.jinja").read_text()).render(
            **dict(context, hsts=31536000))
    assert text.count("server_tokens off;") == 2
    assert "include {};".format(context["location_file"]) in text
    assert "ssl_certificate_key /etc/nginx/tls/omero-web.key;" in text
    assert "return 302 /omero/;" in text
    assert "return 302" not in jinja2.Template(
        (REPO / "omero_web/files/default/nginx-tls.conf.jinja").read_text()).render(
            **dict(context, prefix="", prefix_locations=[]))


def test_logdir_elsewhere_links_var_log_and_the_unit_may_write_there(variant):
    render = variant("logdir")
    tree = [next(iter(entry)) for entry in render.args("omero_web-user-file-directory-tree")["names"]]
    assert "/opt/omero/web/omero-web/var/log" not in tree
    logdir = render.args("omero_web-user-file-directory-logdir")
    assert (logdir["name"], logdir["user"], logdir["mode"]) == ("/var/log/omero-web", "omero-web", "0750")
    assert "makedirs" not in logdir  # its parents stay root's
    link = render.args("omero_web-user-file-symlink-logdir")
    assert (link["name"], link["target"]) == ("/opt/omero/web/omero-web/var/log", "/var/log/omero-web")
    assert link["backupname"] == "log.before-logdir"
    assert _props(render)["omero.web.logdir"] == "/var/log/omero-web"
    assert "ReadWritePaths=-/var/log/omero-web" in render.args(UNIT)["context"]["hardening"]
    assert "--log /var/log/omero-web/OMEROweb.log" in render.args(HEALTH)["name"]


def test_default_logdir_has_no_link(variant):
    render = variant("tls")
    assert "omero_web-user-file-symlink-logdir" not in render.states
    assert "omero.web.logdir" in render.args(CONFIG)["unsets"]


def test_public_access_behind_an_outer_proxy(variant):
    render = variant("public_behind_proxy")
    props = _props(render)
    assert props["omero.web.public.enabled"] is True
    assert props["omero.web.secure_proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO_OMERO_WEB", "https"]
    assert props["omero.web.csrf_trusted_origins"] == ["https://omero.example.org"]
    # the password is a secret of the config state, masked in its output
    assert "omero.web.public.password" in render.args(CONFIG)["secret_keys"]


def test_clearsessions_disabled_removes_the_timer(variant):
    render = variant("clear_disabled")
    assert TIMER not in render.states
    dead = render.args("omero_web-clearsessions-clean-service-dead")
    assert dead["name"] == "omero-web-clearsessions.timer" and dead["enable"] is False
    assert "omero_web-clearsessions-clean-service-dead" in render.applied() | render.cleaned()


def test_local_wheel(variant):
    render = variant("wheel_local")
    wheel = "/srv/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    assert _icepy_wheel(render) == wheel
    assert "omero_web-venv-file-managed-icepy" not in render.states


def test_salt_wheel_is_cached_first(variant):
    render = variant("wheel_salt")
    cached = render.args("omero_web-venv-file-managed-icepy")
    assert cached["source"] == "salt://wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    assert cached["name"] == (
        "/var/cache/omero-web/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl")
    assert _icepy_wheel(render) == cached["name"]
    assert cached["require_in"] == [{"omero_venv": VENV}]


def test_selinux_unmanaged(variant):
    render = variant("selinux_unmanaged")
    assert not any("selinux" in render.states[sid]["fun"] for sid in render.applied())


def test_clean_pkgs_removes_nginx_and_redis(variant):
    render = variant("clean_pkgs")
    removed = {render.args(sid)["name"] for sid in _by_fun(render, "pkg.removed",
                                                             render.cleaned())}
    assert removed == {"nginx", "redis"}


@pytest.mark.parametrize("name, words", [
    ("bad_workers", ["omero_web:gunicorn:workers", "positive integer"]),
    ("typo_key", ["omero_web:gunicron", "gunicorn"]),
])
def test_bad_pillar_fails_the_render(renders, name, words):
    render = renders[name]
    assert not render.ok
    message = "\n".join(str(error) for error in render.errors)
    for word in words:
        assert word in message


def test_unsynced_modules_say_how_to_sync(unsynced_render):
    assert not unsynced_render.ok
    message = "\n".join(str(error) for error in unsynced_render.errors)
    assert "saltutil.sync_all" in message


def test_dry_run_before_the_venv_exists_compiles_the_same_states(variant):
    """test=True without the venv: the same states as a real run (the state
    functions predict; unit-tested)."""
    render = variant("dry_run_fresh")
    assert render.state(PIP)["fun"] == "omero_venv.packages_installed"
    assert render.state(VENV)["fun"] == "omero_venv.present"
    assert not _by_fun(render, "test.succeed_with_changes")


def test_templates_can_be_overridden(variant):
    """TOFS as template-formula keys it: site directories, per-grain folders
    (files_switch), then files/default; names from source_files[state ID]
    (or the template's name), then the template's own name."""
    render = variant("tofs")
    assert render.args(UNIT)["source"] == [
        "salt://site/omero_web/my.service.jinja",
        "salt://site/omero_web/omero-web.service.jinja",
        "salt://omero_web/files/RedHat/my.service.jinja",
        "salt://omero_web/files/RedHat/omero-web.service.jinja",
        "salt://omero_web/files/default/my.service.jinja",
        "salt://omero_web/files/default/omero-web.service.jinja",
    ]
    timer = render.args("omero_web-clearsessions-file-managed")["names"][1]
    assert timer["/etc/systemd/system/omero-web-clearsessions.timer"][0]["source"] == [
        "salt://site/omero_web/omero-web-clearsessions.timer.jinja",
        "salt://omero_web/files/RedHat/omero-web-clearsessions.timer.jinja",
        "salt://omero_web/files/default/omero-web-clearsessions.timer.jinja",
    ]
    # template-formula's keys: path_prefix, dirs
    prefixed = variant("tofs_prefix")
    assert prefixed.args("omero_web-healthcheck-file-managed")["source"] == [
        "salt://site-files/alt/Debian/omero-web-healthcheck.py.jinja",
        "salt://site-files/alt/common/omero-web-healthcheck.py.jinja",
    ]

REQUISITES = ("require", "watch", "onchanges", "onfail", "prereq", "require_in", "watch_in",
              "onchanges_in", "listen")


@pytest.mark.parametrize("name", sorted(n for n in VARIANTS if not n.startswith(("bad_", "typo_", "no_wheel"))))
def test_sls_requisites_name_sls_files_that_have_states(renders, name):
    """Salt 3008 refuses a requisite on an sls without states (3006/3007 let it
    pass): every `- sls:` requisite of every render names one that has some."""
    render = renders[name]
    assert render.ok, render.errors[:1]
    with_states = {state["sls"] for state in render.states.values()}
    for sid, state in render.states.items():
        for kind in REQUISITES:
            for req in state["args"].get(kind) or []:
                if isinstance(req, dict) and "sls" in req:
                    assert req["sls"] in with_states, (sid, kind, req["sls"])


# --------------------------------------------------------------------------
# the load balancer of a multi-node site (issue 14)
# --------------------------------------------------------------------------

LB_FILE = "omero_web-loadbalancer-config-omero_web-nginx_file"
LB_SERVICE = "omero_web-loadbalancer-service-omero_web-nginx_running"
LB_FAIL = "omero_web-loadbalancer-config-test-fail_without_changes"


def _lb_text(render):
    """The load balancer's nginx file as file.managed renders it (plain Jinja: the
    template uses nothing of Salt's)."""
    import jinja2  # pylint: disable=import-outside-toplevel
    args = render.args(LB_FILE)
    assert args["source"] == "salt://omero_web/files/default/nginx-loadbalancer.conf.jinja"
    source = REPO / "omero_web/files/default/nginx-loadbalancer.conf.jinja"
    return jinja2.Template(source.read_text()).render(**args["context"])


def test_loadbalancer_upstream_from_the_pillar(variant):
    render = variant("loadbalancer")
    assert render.args(LB_FILE)["name"] == "/etc/nginx/conf.d/omero-web-loadbalancer.conf"
    assert render.state(LB_SERVICE)["fun"] == "omero_web.nginx_running"
    # the load balancer is nginx only: no OMERO.web on its minion
    assert not any(render.states[s]["sls"].startswith(("omero_web.venv", "omero_web.config",
                                                       "omero_web.service"))
                   for s in render.applied())
    text = _lb_text(render)
    assert "    server 10.0.0.11:80 max_fails=3 fail_timeout=15s;\n" in text, text
    assert "    server [fd00::12]:8080 max_fails=3 fail_timeout=15s down;\n" in text, text
    assert "listen 8090;" in text and "server_name omero.example.org;" in text
    assert "proxy_pass http://omero_web_nodes;" in text
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in text
    # its clean.sls removes it
    assert render.args("omero_web-loadbalancer-clean-file-absent")["name"] == (
        "/etc/nginx/conf.d/omero-web-loadbalancer.conf")


@pytest.mark.parametrize("name, expected", [
    ("loadbalancer_no_member", "no web node: loadbalancer:members is empty"),
    ("loadbalancer_empty_mine", "the mine has no omero_web.lb_member record for 'web*'"),
])
def test_loadbalancer_without_members_changes_nothing(variant, name, expected):
    render = variant(name)
    assert LB_FILE not in render.states
    assert expected in render.args(LB_FAIL)["name"], render.args(LB_FAIL)


def test_lb_member_publishes_the_nodes_nginx(variant, render_root):
    from render_support import _salt_call  # pylint: disable=import-outside-toplevel
    variant("loadbalancer")
    proc, data = _salt_call(render_root / "loadbalancer" / "conf", "omero_web.lb_member")
    # pillar.example's node: nginx on 80 under /omero; the address from grains
    assert isinstance(data, dict), proc.stderr[-2000:]
    assert data["port"] == 80 and data["prefix"] == "/omero" and data["address"], data
