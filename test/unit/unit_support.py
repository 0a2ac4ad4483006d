"""
What the unit suites share (one import name, ``unit_support``; fixtures are
in conftest.py):

* ``FORMULA``: the formula's execution and state modules and its pure
  utility modules, each loaded once from its file. Their dunders
  (``__salt__``, ``__opts__``, ``__utils__``...) come from each test file's
  ``configure_loader_modules`` (pytest-salt-factories' loader mock).
* ``build()``: the merged map as map.jinja builds it (defaults, platform
  layers, lookup, pillar), for pillar.example with overrides.
* ``FakeOmero``: stands in for ``cmd.run_all`` where the ``omero`` process
  would run: it behaves like the venv programs of
  ``_utils/omero_web_scripts.py`` (it writes config.xml for real) and like
  ``omero web config``. The real CLI runs in ``test/functional``.
"""

import copy
import importlib.util
import json
import pathlib
import sys
import types
import xml.etree.ElementTree as ET

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PARAMETERS = REPO / "omero_web" / "parameters"
USER = "nobody"  # exists on every Debian/RedHat host, uid != 0
MIDDLEWARE_DEFAULT = [
    {"index": 1, "class": "django.middleware.common.BrokenLinkEmailsMiddleware"},
    {"index": 2, "class": "django.middleware.common.CommonMiddleware"},
]

_FILES = {
    "omero": "_modules/omero.py",
    "omero_web": "_modules/omero_web.py",
    "omero_venv": "_modules/omero_venv.py",
    "omero_state": "_states/omero.py",
    "omero_venv_state": "_states/omero_venv.py",
    "omero_web_state": "_states/omero_web.py",
    "schema": "_utils/omero_web_schema.py",
    "validate": "_utils/omero_web_validate.py",
    "secrets": "_utils/omero_web_secrets.py",
    "configxml": "_utils/omero_web_configxml.py",
    "derive": "_utils/omero_web_derive.py",
    "scripts": "_utils/omero_web_scripts.py",
}


def _load(name, relpath):
    qualified = "omero_web_formula_under_test." + name
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, REPO / relpath)
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


#: The formula's modules, by short name (see _FILES).
FORMULA = types.SimpleNamespace(**{name: _load(name, path) for name, path in _FILES.items()})


# --------------------------------------------------------------------------
# maps as map.jinja builds them
# --------------------------------------------------------------------------


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def example_pillar():
    """pillar.example's omero_web."""
    return load_yaml(REPO / "pillar.example")["omero_web"]


def defaults():
    return load_yaml(PARAMETERS / "defaults.yaml")["values"]


def layer(relative):
    path = PARAMETERS / relative
    return ((load_yaml(path) or {}).get("values") or {}) if path.exists() else {}


def salt_merge(base, extra):
    """map.jinja's merge: Salt's own, strategy smart, lists replaced."""
    from salt.utils.dictupdate import merge  # pylint: disable=import-outside-toplevel

    return merge(copy.deepcopy(base), copy.deepcopy(extra), strategy="smart", merge_lists=False)


def deep_update(base, extra):
    """Pillar overrides: dicts merge, anything else (None too) replaces."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build(overrides=None, platform="osfinger/Debian-12.yaml", os_family="os_family/Debian.yaml"):
    """``(mapdata, raw pillar)`` for pillar.example with ``overrides``, as map.jinja merges them."""
    pillar = deep_update(example_pillar(), overrides or {})
    platform_map = salt_merge(salt_merge(defaults(), layer(os_family)), layer(platform))
    lookup = pillar.get("lookup") or {}
    values = {k: v for k, v in pillar.items() if k != "lookup"}
    return salt_merge(salt_merge(platform_map, lookup), values), pillar


# --------------------------------------------------------------------------
# config.xml and the fake omero process
# --------------------------------------------------------------------------


def write_config(omerodir, props, profile="default", active_extra=None):
    """Write config.xml in omero.config.ConfigXml's layout."""
    grid = pathlib.Path(omerodir) / "etc" / "grid"
    grid.mkdir(parents=True, exist_ok=True)
    root = ET.Element("icegrid")
    active = ET.SubElement(root, "properties", id="__ACTIVE__")
    ET.SubElement(active, "property", name="omero.config.profile", value=profile)
    ET.SubElement(active, "property", name="omero.config.version", value="5.1.0")
    for key, value in (active_extra or props).items():
        ET.SubElement(active, "property", name=key, value=value)
    block = ET.SubElement(root, "properties", id=profile)
    ET.SubElement(block, "property", name="omero.config.version", value="5.1.0")
    for key, value in props.items():
        ET.SubElement(block, "property", name=key, value=value)
    ET.ElementTree(root).write(grid / "config.xml", encoding="UTF-8")


def read_profile(omerodir):
    return FORMULA.configxml.read(str(omerodir))


class FakeOmero:
    """
    ``cmd.run_all`` where an omero process would run: answers like the venv
    programs (write_config writes config.xml for real, default_lists returns
    ``defaults``, load_settings fails with ``settings_error``) and like
    ``omero web config`` (``server { }``); records every call.
    """

    def __init__(self, defaults=None):
        self.calls = []
        self.defaults = defaults or {"omero.web.middleware": MIDDLEWARE_DEFAULT}
        self.write = True
        self.fail = None
        self.cli_fail = None
        self.settings_error = None

    @staticmethod
    def program(cmd):
        """The omero_web_scripts function a ``python -c`` command runs, or None."""
        if cmd[1:2] != ["-c"]:
            return None
        for name in ("write_config", "default_lists", "load_settings"):
            if "\ndef {}(".format(name) in "\n" + cmd[2]:
                return name
        return "unknown"

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        if self.fail:
            return {"retcode": self.fail[0], "stdout": "", "stderr": self.fail[1]}
        marker = FORMULA.scripts.MARKER
        program = self.program(cmd)
        if program == "write_config":
            req = json.loads(kwargs["stdin"])
            omerodir = pathlib.Path(req["path"]).parents[2]
            current = read_profile(omerodir)
            if self.write:
                for key, value in req["new"].items():
                    if value is None:
                        current.pop(key, None)
                    else:
                        current[key] = value
                write_config(omerodir, current)
            return {"retcode": 0, "stdout": "noise\n" + marker + json.dumps(sorted(req["new"])), "stderr": ""}
        if program == "default_lists":
            keys = json.loads(kwargs["stdin"])["keys"]
            out = marker + json.dumps({k: self.defaults.get(k, []) for k in keys})
            return {"retcode": 0, "stdout": out, "stderr": ""}
        if program == "load_settings":
            return {"retcode": 1, "stdout": "", "stderr": self.settings_error or ""}
        if self.cli_fail:
            return {"retcode": self.cli_fail[0], "stdout": "", "stderr": self.cli_fail[1]}
        return {"retcode": 0, "stdout": "server { }", "stderr": ""}

    def by_program(self, name):
        return [call for call in self.calls if self.program(call[0]) == name]

    @property
    def commands(self):
        return [cmd for cmd, _ in self.calls]


def install_dist(venv, name, version):
    """A ``<name>-<version>.dist-info`` in the venv's site-packages."""
    dist = pathlib.Path(venv) / "lib" / "python3.11" / "site-packages" / (
        "{}-{}.dist-info".format(name.replace("-", "_"), version)
    )
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\n\n".format(name, version)
    )
    return dist


def run_all(cmd, python_shell=False, ignore_retcode=False, output_loglevel=None, **kwargs):
    """Salt's ``cmd.run_all`` for the commands that really run in unit tests (read-only ones)."""
    import subprocess  # pylint: disable=import-outside-toplevel

    assert python_shell is False and isinstance(cmd, list)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def omero_web_dunders(utils):
    """The ``omero_web`` execution module's dunders for the validation tests."""
    return {
        "__grains__": {"num_cpus": 2, "os_family": "Debian"},
        "__pillar__": {},
        "__opts__": {},
        "__utils__": utils,
        "__salt__": {"cmd.run_all": run_all},
    }


def installed_script(template_name, path):
    """One of the formula's script templates (omero_web/files/default/) rendered
    for this Python and made executable at ``path``, as its sls installs it."""
    import jinja2  # pylint: disable=import-outside-toplevel

    template = REPO / "omero_web" / "files" / "default" / template_name
    path.write_text(jinja2.Template(template.read_text()).render(python=sys.executable))
    path.chmod(0o755)
    return path

