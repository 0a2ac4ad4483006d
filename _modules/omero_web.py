"""
The formula's own logic, for ``map.jinja``: validate the ``omero_web``
pillar and derive what the states apply from it.

Thin over the formula's utility modules (``_utils/``, synced with the rest
by ``saltutil.sync_all``): the pillar schema (``omero_web_schema``), the
derivation (``omero_web_derive``) and the secret rule
(``omero_web_secrets``) and validation (``omero_web_validate``). Validation
adds what only the minion can know, read without changing anything: its
existing accounts and units, and ``systemd-analyze calendar``.

.. code-block:: jinja

    {%- do salt["omero_web.validate"](mapdata, pillar=salt["pillar.get"]("omero_web")) %}
    {%- do mapdata.update({"derived": salt["omero_web.derive"](mapdata, grains)}) %}
"""

import json
import os
import types

from salt.exceptions import SaltInvocationError

__virtualname__ = "omero_web"

ROOT = "omero_web"


#: What derive and validation use of the other utility modules (utility
#: modules get no ``__utils__``: these are handed to them).
_USES = {
    "omero_web_schema": ("table", "direct_properties", "owned_properties", "version_spec",
                         "join_specifiers"),
    "omero_web_secrets": ("is_secret_key", "ref", "refs"),
}


def _module(name):
    """Utility module ``name`` as an object with the functions the others use, resolved here."""
    return types.SimpleNamespace(
        **{function: __utils__[name + "." + function] for function in _USES[name]}
    )


def __virtual__():
    if "omero_web_validate.errors" not in __utils__:
        return (
            False,
            "omero_web: the formula's _utils/ are not synced (run saltutil.sync_all)",
        )
    return __virtualname__


def errors(mapdata, pillar=None, known_keys=None):  # pylint: disable=unused-argument
    """
    Every problem of the pillar, one message per problem (``[]`` when valid).
    Same arguments as :py:func:`validate`.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.errors "$(salt-call --out=json pillar.get omero_web)"
    """
    if pillar is None:
        pillar = (globals().get("__pillar__") or {}).get(ROOT)
    mask = __utils__["omero_web_secrets.mask_urls"]
    problems = __utils__["omero_web_validate.errors"](mapdata, pillar, _module("omero_web_schema"))
    if not problems and isinstance(mapdata, dict):
        problems = _host_problems(mapdata)
    return [mask(problem) for problem in problems]


# --------------------------------------------------------------------------
# what only the minion knows: its accounts, its units, its systemd
# --------------------------------------------------------------------------

ACCOUNT_MARK = "OMERO.web (omero-web-formula)"
FILE_MARK = "Managed by Salt (omero-web-formula"
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)


def _system_uid_max():
    """SYS_UID_MAX of /etc/login.defs (999 when it says nothing)."""
    try:
        with open("/etc/login.defs", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 2 and fields[0] == "SYS_UID_MAX" and fields[1].isdigit():
                    return int(fields[1])
    except OSError:
        pass
    return 999


def _account_problems(mapdata):
    import grp  # pylint: disable=import-outside-toplevel
    import pwd  # pylint: disable=import-outside-toplevel

    problems = []
    name = mapdata.get("user")
    try:
        account = pwd.getpwnam(name)
    except (KeyError, TypeError):
        account = None
    if account is not None and ACCOUNT_MARK not in account.pw_gecos and (
        account.pw_uid == 0 or account.pw_uid <= _system_uid_max()
    ):
        problems.append(
            "{}:user: expected an account of OMERO.web's own, got the existing system account "
            "{} (uid {}), which the formula did not create".format(ROOT, name, account.pw_uid)
        )
    group = mapdata.get("group")
    try:
        entry = grp.getgrnam(group)
    except (KeyError, TypeError):
        entry = None
    own_gid = account.pw_gid if account is not None and not problems else None
    if entry is not None and entry.gr_gid <= _system_uid_max() and entry.gr_gid != own_gid:
        problems.append(
            "{}:group: expected a group of OMERO.web's own, got the existing system group "
            "{} (gid {})".format(ROOT, group, entry.gr_gid)
        )
    return problems


def _unit_problems(mapdata):
    """Units the formula would write must be its own, or (the main one) an OMERO.web unit."""
    name = ((mapdata.get("service") or {}).get("name")) or ""
    units = [(name + ".service", True), (name + "-clearsessions.service", False),
             (name + "-clearsessions.timer", False)]
    problems = []
    for unit, omero_web_unit in units:
        for directory in UNIT_DIRS:
            path = os.path.join(directory, unit)
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read(65536)
            except OSError:
                continue
            if FILE_MARK in text or (omero_web_unit and "omero web start" in text):
                continue
            problems.append(
                "{}:service:name: expected a unit of OMERO.web's own, got {!r}: {} exists and "
                "the formula did not write it".format(ROOT, name, path)
            )
    return problems


#: Files root writes at a path the pillar names: each must be the formula's or new.
ROOT_SCRIPTS = (("service", "healthcheck", "script"), ("nginx", "precompress_script"))


def _file_problems(mapdata):
    """Scripts root writes (ROOT_SCRIPTS) must be the formula's own, or new."""
    problems = []
    for parts in ROOT_SCRIPTS:
        script = mapdata
        for part in parts:
            script = script.get(part) if hasattr(script, "get") else None
        if not isinstance(script, str) or not os.path.lexists(script):
            continue
        try:
            with open(script, encoding="utf-8", errors="replace") as handle:
                head = handle.read(4096)
        except OSError:
            head = ""
        if os.path.islink(script) or not os.path.isfile(script) or FILE_MARK not in head:
            problems.append("{}:{}: expected a file of the formula's own, got {}, which exists "
                            "and which the formula did not write".format(ROOT, ":".join(parts), script))
    return problems


def _calendar_problems(mapdata):
    """systemd's own parser has the last word on OnCalendar (when the minion has it)."""
    clear = ((mapdata.get("sessions") or {}).get("clear")) or {}
    calendar = clear.get("on_calendar")
    analyze = "/usr/bin/systemd-analyze"
    if not clear.get("enabled") or not isinstance(calendar, str) or not os.access(analyze, os.X_OK):
        return []
    result = __salt__["cmd.run_all"]([analyze, "calendar", calendar], python_shell=False,
                                      ignore_retcode=True, output_loglevel="quiet")
    if result["retcode"] == 0:
        return []
    return ["{}:sessions:clear:on_calendar: expected an expression systemd accepts, got {}".format(
        ROOT, json.dumps(calendar))]


def _host_problems(mapdata):
    return (
        _account_problems(mapdata)
        + _unit_problems(mapdata)
        + _file_problems(mapdata)
        + _calendar_problems(mapdata)
    )


def validate(mapdata, pillar=None, known_keys=None):
    """
    Validate the merged map; return True or raise ``SaltInvocationError`` with
    every problem, one per line, each naming the pillar key and what was
    expected, e.g.
    ``omero_web:gunicorn:workers: expected a positive integer or "auto", got -1``.
    Secret values are never shown.

    mapdata
        the merged map (parameters/ layers + lookup + pillar).
    pillar
        the raw ``omero_web`` pillar, for the typo guard (default:
        ``__pillar__``'s ``omero_web``).
    known_keys
        ignored (the schema knows every key); kept for callers of earlier
        versions.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.validate "$(salt-call --out=json pillar.get omero_web)"
    """
    problems = errors(mapdata, pillar=pillar, known_keys=known_keys)
    if problems:
        raise SaltInvocationError("\n".join(problems))
    return True


def derive(mapdata, grains=None):
    """
    What the states apply, from the merged map (see ``_utils/omero_web_derive.py``):
    ``properties``, ``appends``, ``unsets``, ``removals``, ``secret_keys``,
    ``pip_packages``, ``workers``, ``prefix``, ``static_url``, ``nginx``,
    ``redis``, ``healthcheck``, ``selinux``.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.derive "$(salt-call --out=json pillar.get omero_web)"
    """
    if grains is None:
        grains = globals().get("__grains__", {})
    return __utils__["omero_web_derive.derive"](
        mapdata, grains, _module("omero_web_schema"), _module("omero_web_secrets"),
        previous=_recorded((mapdata or {}).get("omerodir")),
        mine=_mine_members(mapdata),
    )


# --------------------------------------------------------------------------
# several nodes: what each web node publishes, what the load balancer reads
# --------------------------------------------------------------------------

#: The mine function each web node runs (pillar ``mine_functions``).
LB_MEMBER_FUNCTION = "omero_web.lb_member"

#: map.jinja's mapdata as the sls files see it, rendered on this minion.
_LB_MEMBER_TEMPLATE = (
    '{%- from "omero_web/map.jinja" import mapdata without context %}'
    "{{ mapdata.derived.lb_member | json }}"
)


def lb_member():
    """
    What this web node publishes in the Salt mine for the load balancer
    (``omero_web.loadbalancer``): ``{address, port, prefix}`` of its nginx,
    from its own mapdata (map.jinja: the parameters, its pillar, validated),
    so that the load balancer reaches the node exactly as its formula
    configures it. Publish it with the pillar

    .. code-block:: yaml

        mine_functions:
          omero_web.lb_member: []

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.lb_member
    """
    return __salt__["slsutil.renderer"](string=_LB_MEMBER_TEMPLATE, default_renderer="jinja|json")


def _mine_members(mapdata):
    """
    The web nodes' ``omero_web.lb_member`` records in the Salt mine, ``{minion
    id: record}``, for ``loadbalancer:mine_target`` (``{}`` without one);
    asked once per run, and validated (they come from other minions).
    """
    section = (mapdata or {}).get("loadbalancer") or {}
    target = section.get("mine_target")
    if not target:
        return {}
    tgt_type = section.get("mine_target_type") or "glob"
    key = "omero_web.mine:{}:{}".format(tgt_type, target)
    if key not in __context__:
        __context__[key] = __salt__["mine.get"](target, LB_MEMBER_FUNCTION, tgt_type=tgt_type)
    records = __context__[key]
    problems = __utils__["omero_web_validate.mine_problems"](records)
    if problems:
        raise SaltInvocationError("\n".join(problems))
    return records


def _recorded(omerodir):
    """
    What the last apply set for ``omerodir`` (its record, root's); ``{}``
    for an OMERODIR made by hand (no mark: a site being taken over); None
    when unknown (a fresh host, or a site the formula applied to before it
    kept records: every formula-owned property the pillar does not set is
    unset).
    """
    import json  # pylint: disable=import-outside-toplevel

    path = __utils__["omero_web_derive.apps_record_file"]()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("omerodir") == omerodir:
        return data
    if (isinstance(omerodir, str) and os.path.isdir(omerodir)
            and not os.path.exists(os.path.join(omerodir, DIRECTORY_MARK))):
        return {}  # made by hand: what is set there stays
    return None


def is_secret(key, value=None, secret_keys=None):
    """
    Whether the value of property ``key`` is a secret (the formula's one rule:
    ``_utils/omero_web_secrets.py``).

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.is_secret omero.web.secret_key
    """
    return __utils__["omero_web_secrets.is_secret"](key, value, secret_keys or ())


def masked(mapdata):
    """
    The merged map with every secret masked (the one rule), e.g. for the
    ``_mapdata`` dump.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.masked "$(salt-call --out=json pillar.get omero_web)"
    """
    extra = list((mapdata or {}).get("secret_keys") or ())
    extra += list(((mapdata or {}).get("derived") or {}).get("secret_keys") or ())
    return __utils__["omero_web_secrets.mask_deep"](mapdata, extra)


#: The file the formula puts in each directory it owns (OMERODIR, the venv).
DIRECTORY_MARK = ".omero-web-formula"


def clean_refusals(mapdata):
    """
    What ``clean.sls`` must not delete because the formula did not make it:
    an account without the formula's mark, units it did not write,
    directories without its mark. One message per thing, naming the key.

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.clean_refusals "$(salt-call --out=json pillar.get omero_web)"
    """
    import pwd  # pylint: disable=import-outside-toplevel

    refusals = []
    try:
        account = pwd.getpwnam(mapdata.get("user"))
    except (KeyError, TypeError):
        account = None
    if account is not None and ACCOUNT_MARK not in account.pw_gecos:
        refusals.append("{}:user: the account {} was not created by the formula: not "
                        "deleted".format(ROOT, account.pw_name))
    service = (mapdata.get("service") or {})
    name, unit_dir = service.get("name"), service.get("unit_dir")
    for unit in (name + ".service", name + "-clearsessions.service", name + "-clearsessions.timer"):
        path = os.path.join(unit_dir or "/etc/systemd/system", unit)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4096)
        except OSError:
            continue
        if FILE_MARK not in text:
            refusals.append("{}:service:name: {} was not written by the formula: not "
                            "deleted".format(ROOT, path))
    for key in ("omerodir", "venv"):
        path = mapdata.get(key)
        if isinstance(path, str) and os.path.isdir(path) and not os.path.exists(
            os.path.join(path, DIRECTORY_MARK)
        ):
            refusals.append("{}:{}: {} was not made by the formula: not deleted".format(ROOT, key, path))
    return refusals


def clean_check(mapdata):
    """
    Raise SaltInvocationError, naming each key, when ``clean.sls`` would
    delete something the formula did not make (:py:func:`clean_refusals`).

    CLI Example:

    .. code-block:: bash

        salt-call omero_web.clean_check "$(salt-call --out=json pillar.get omero_web)"
    """
    refusals = clean_refusals(mapdata)
    if refusals:
        raise SaltInvocationError("\n".join(refusals))
    return True
