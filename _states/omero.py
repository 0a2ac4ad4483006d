"""
Manage OMERO.web's configuration (``omero config``) and its nginx file.

Uses the ``omero`` execution module of this formula. Every state accepts the
``user``, ``omerodir`` and ``venv`` of the execution module (default: pillar
``omero_web:*``, then the walkthrough's paths); ``nginx_config`` calls the
omero user ``omero_user`` because ``user`` is the file's owner there.

.. code-block:: yaml

    omero-web-config:
      omero.config_managed:
        - properties:
            omero.web.prefix: /omero
            omero.web.server_list: [[localhost, 4064, omero]]
            omero.web.secret_key: {{ pillar['omero_web_secret'] }}
        - appends:
            omero.web.apps: [omero_figure]
        - prune: true

    omero.web.debug:
      omero.config_absent

    /etc/nginx/conf.d/omeroweb.conf:
      omero.nginx_config:
        - http: 80
        - servername: omero.example.org

Secrets are masked as ``********`` in changes, comments and errors, by the
formula's one rule (``_utils/omero_web_secrets.py``): known secret properties
(``omero.web.secret_key``, ``omero.web.public.password``...), the properties
named in ``secret_keys``, and any value holding a URL with a password (only
the password is masked there).
"""

import hashlib
import json
import logging
import os
import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "omero"

FINGERPRINT_TAG = "omero-web-formula-fingerprint:"
# Properties `omero web config nginx[-location]` reads (omero/plugins/web.py).
NGINX_PROPERTIES = (
    "omero.web.prefix",
    "omero.web.static_url",
    "omero.web.static_root",
    "omero.web.application_server",
    "omero.web.application_server.host",
    "omero.web.application_server.port",
    "omero.web.nginx_server_extra_config",
)


def __virtual__():
    if "omero.config_plan" in __salt__ and "omero_web_secrets.mask_changes" in __utils__:
        return __virtualname__
    return (False, "omero state: the omero execution module is not available")


def _secrets(name):
    return __utils__["omero_web_secrets." + name]


def _keys(changes):
    return ", ".join(sorted(changes))


def _manage(name, properties=None, appends=None, removals=None, unsets=None, prune=False,
            prune_prefix="omero.web.", secret_keys=None, user=None, omerodir=None, venv=None):
    """
    check (in-process plan) -> test -> one batch write -> re-read.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    secret_keys = list(secret_keys or [])
    # Secrets the formula generated on the minion come as references: the
    # values are read here, at apply time, and never rendered into a state.
    referenced = _secrets("refs")(properties or {})
    properties = _secrets("resolve")(properties or {}, _read_secret)
    unresolved = sorted(path for path in referenced if _read_secret(path) is None)
    secrets = _secrets("secret_texts")(dict(properties or {}, **(appends or {})), secret_keys)

    def mask(changes):
        return _secrets("mask_changes")(changes, secret_keys)

    def scrub(text):
        return _secrets("scrub")(text, secrets)

    kwargs = {
        "properties": properties,  # resolved
        "appends": appends,
        "removals": removals,
        "unsets": unsets,
        "prune": prune,
        "prune_prefix": prune_prefix,
        "user": user,
        "omerodir": omerodir,
        "venv": venv,
    }
    if unresolved and not __opts__["test"]:
        ret["comment"] = "the secret in {} does not exist".format(", ".join(unresolved))
        return ret
    # (a dry run before the secret exists plans with the reference itself:
    # the property is predicted to change, as it will)
    try:
        plan = __salt__["omero.config_plan"](**kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        if __opts__["test"] and _not_installed_yet(user, omerodir, venv):
            # A dry run on a fresh host: the user, OMERODIR or venv that
            # earlier states create do not exist yet. Everything is new.
            ret["result"] = None
            ret["changes"] = mask(_fresh_plan(properties, appends))
            ret["comment"] = (
                "OMERO.web is not installed yet: every property would be set "
                "(appended lists start from OMERO.web's default list)"
            )
            return ret
        ret["comment"] = scrub(f"Cannot read the OMERO configuration: {exc}")
        return ret
    if not plan:
        ret["result"] = True
        ret["comment"] = "OMERO configuration is already in the desired state"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = mask(plan)
        ret["comment"] = f"{len(plan)} OMERO properties would be changed: {_keys(plan)}"
        return ret
    try:
        changes = __salt__["omero.config_batch"](**kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = scrub(f"Failed to change {_keys(plan)}: {exc}")
        return ret
    ret["changes"] = mask(changes)
    try:
        left = __salt__["omero.config_plan"](**kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = scrub(f"Cannot read back the OMERO configuration: {exc}")
        return ret
    if left:
        ret["comment"] = (
            f"OMERO properties read back differ from what was written: {_keys(left)}"
        )
        return ret
    ret["result"] = True
    ret["comment"] = f"{len(changes)} OMERO properties changed: {_keys(changes)}"
    return ret


def _read_secret(path):
    """A secret the formula keeps on the minion (``omero_web.secret_present``), or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _not_installed_yet(user, omerodir, venv):
    """Whether the OMERO.web user, OMERODIR or venv does not exist yet."""
    import pwd  # pylint: disable=import-outside-toplevel

    paths = __salt__["omero.paths"](user=user, omerodir=omerodir, venv=venv)
    try:
        pwd.getpwnam(paths["user"])
    except KeyError:
        return True
    return not (
        os.path.isdir(paths["omerodir"])
        and os.path.exists(os.path.join(paths["venv"], "bin", "omero"))
    )


def _fresh_plan(properties, appends):
    """What a first write would change: ``{key: (old, new)}`` display form."""
    plan = {}
    for key, value in (properties or {}).items():
        if value is not None:
            plan[key] = {"old": None, "new": value}
    for key, values in (appends or {}).items():
        plan[key] = {"old": None, "new": list(values)}
    return plan


def config_set(name, value, user=None, omerodir=None, venv=None):
    """
    Ensure the OMERO property ``name`` has ``value`` (compared by meaning:
    ``true`` equals ``True``, JSON spacing and key order do not matter).

    name
        The property, e.g. ``omero.web.prefix``.

    value
        A string, number, boolean, list or dict. Lists and dicts are written
        as JSON, booleans as ``true``/``false``.

    .. code-block:: yaml

        omero.web.server_list:
          omero.config_set:
            - value: [[localhost, 4064, omero]]
    """
    if value is None:
        return {
            "name": name,
            "result": False,
            "changes": {},
            "comment": "value is required (use omero.config_absent to unset)",
        }
    return _manage(
        name, properties={name: value}, user=user, omerodir=omerodir, venv=venv
    )


def config_appended(name, values, user=None, omerodir=None, venv=None):
    """
    Ensure each of ``values`` is in the list property ``name`` (``omero config
    append --set``: values already present are not added again; on an unset
    ``omero.web.*`` key the list starts from OMERO.web's built-in default).

    values
        A list of elements, or a single element.

    .. code-block:: yaml

        omero.web.apps:
          omero.config_appended:
            - values: [omero_figure]
    """
    return _manage(
        name, appends={name: values}, user=user, omerodir=omerodir, venv=venv
    )


def config_absent(name, user=None, omerodir=None, venv=None):
    """
    Ensure the OMERO property ``name`` is not set.

    .. code-block:: yaml

        omero.web.debug:
          omero.config_absent
    """
    return _manage(name, unsets=[name], user=user, omerodir=omerodir, venv=venv)


def config_managed(
    name,
    properties=None,
    appends=None,
    removals=None,
    unsets=None,
    prune=False,
    prune_prefix="omero.web.",
    secret_keys=None,
    user=None,
    omerodir=None,
    venv=None,
):
    """
    Manage a whole set of OMERO properties at once: one in-process read of
    config.xml to plan, then (if anything differs) one batch write, then a
    read back. A no-op spawns no ``omero`` process; a run that changes K
    properties at most two (one to learn OMERO.web's default list when an
    unset list property is appended to, one to write).

    name
        An identifier; not used.

    properties
        ``{key: value}`` to set (``None`` as value unsets the key).

    appends
        ``{key: [values]}`` that must be in list properties
        (``omero config append --set``).

    removals
        ``{key: [values]}`` that must not be in list properties.

    unsets
        ``[keys]`` that must not be set (ignored for keys in ``properties``).

    prune : False
        Unset every property under ``prune_prefix`` that is not named above
        (drift correction); each one is reported in the changes.

    prune_prefix : omero.web.
        The namespace that ``prune`` cleans.

    secret_keys
        More properties whose values are secrets (masked in changes and
        comments), besides the formula's known ones and URL passwords.

    .. code-block:: yaml

        omero-web-config:
          omero.config_managed:
            - properties:
                omero.web.prefix: /omero
                omero.web.session_cookie_age: 86400
            - appends:
                omero.web.middleware:
                  - {index: 0, class: whitenoise.middleware.WhiteNoiseMiddleware}
            - prune: true
    """
    return _manage(
        name,
        properties=properties,
        appends=appends,
        removals=removals,
        unsets=[key for key in unsets or [] if key not in (properties or {})],
        prune=prune,
        prune_prefix=prune_prefix,
        secret_keys=secret_keys,
        user=user,
        omerodir=omerodir,
        venv=venv,
    )


def _fingerprint(inputs):
    data = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


def _body_hash(body):
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]


def _header(kind, version, inputs_fp, body):
    return (
        f"# Generated by Salt (omero-web-formula) with `omero web config {kind}`"
        f" of omero-web {version}.\n"
        "# Do not edit: it is regenerated when OMERO.web or its configuration"
        " changes.\n"
        f"# {FINGERPRINT_TAG} inputs={inputs_fp} body={_body_hash(body)}\n"
    )


def _current_if_fresh(name, inputs_fp):
    """
    The file's content when it was generated from the same inputs and its
    generated part is untouched; else None.
    """
    try:
        with open(name, encoding="utf-8") as handle:
            content = handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    lines = content.split("\n")
    for index, line in enumerate(lines[:5]):
        if FINGERPRINT_TAG in line:
            fields = dict(
                part.split("=", 1)
                for part in line.split(FINGERPRINT_TAG, 1)[1].split()
                if "=" in part
            )
            body = "\n".join(lines[index + 1 :])
            if body.endswith("\n"):
                body = body[:-1]
            if fields.get("inputs") == inputs_fp and fields.get("body") == _body_hash(
                body
            ):
                return content
            return None
    return None


def nginx_config(
    name,
    properties=None,
    http=None,
    servername=None,
    max_body_size=None,
    location_only=False,
    user=None,
    group=None,
    mode="0644",
    omero_user=None,
    omerodir=None,
    venv=None,
    tuning=None,
):
    """
    Manage an nginx configuration file generated by ``omero web config nginx``
    (or ``nginx-location`` with ``location_only: true``) at apply time, like
    ``file.managed`` (diff, test mode, owner and mode), and tested by
    ``nginx -t`` before it stays (``omero_web.nginx_file``).

    With ``properties``, the generator runs in a throwaway OMERODIR holding
    only them: the file root's nginx loads then comes from validated values,
    never from OMERODIR's config.xml, which the service user can edit.

    The file carries a fingerprint line of its inputs (the omero-web version,
    the arguments, the properties the generator reads); when they and the
    generated text are unchanged, ``omero`` is not run at all.

    name
        The file to manage, e.g. ``/etc/nginx/conf.d/omeroweb.conf``.

    properties
        ``{property: value}`` the generator sees (prefix, static_url,
        static_root, application_server.host/.port,
        nginx_server_extra_config). None: OMERODIR's own config.xml.

    http, servername, max_body_size
        ``--http``, ``--servername``, ``--max-body-size``.

    location_only : False
        Generate the location blocks only (``nginx-location``).

    user, group, mode : 0644
        Owner, group and mode of the file.

    omero_user, omerodir, venv
        The omero user, OMERODIR and venv (default: pillar ``omero_web:*``).
        (Not ``runas``: Salt would run every command of the state as that
        user, ``nginx -t`` included.)

    tuning
        What the formula adds to the generated text so that pages load fast
        (``_utils/omero_web_nginx.py``: gzip, static files' lifetimes,
        keepalive to gunicorn), e.g. ``{gzip_level: 6, static_max_age:
        31536000, static_unversioned_max_age: 86400, keepalive: 16,
        keepalive_timeout_ms: 1000}``. None: OMERO's text as it is. With
        ``location_only``, the location blocks then name the ``map`` and the
        upstream of ``omero.nginx_http_config``'s file.

    .. code-block:: yaml

        /etc/nginx/conf.d/omeroweb.conf:
          omero.nginx_config:
            - http: 80
            - servername: omero.example.org
            - properties:
                omero.web.prefix: /omero
                omero.web.static_url: /omero/static/
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    kind = "nginx-location" if location_only else "nginx"
    conn = {"user": omero_user, "omerodir": omerodir, "venv": venv}
    try:
        resolved = __salt__["omero.paths"](**conn)
        version = __salt__["omero.version"](**conn)
        if properties is None:
            props = __salt__["omero.config_get_all"](raw=True, **conn)
            seen = {key: props.get(key) for key in NGINX_PROPERTIES}
        else:
            seen = dict(properties)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = f"Cannot read the OMERO.web installation: {exc}"
        return ret
    inputs = {
        "type": kind,
        "http": http,
        "servername": servername,
        "max_body_size": None if max_body_size is None else str(max_body_size),
        "omero_web": version,
        "omerodir": resolved["omerodir"],
        "venv": resolved["venv"],
        "properties": seen,
    }
    if tuning is not None:
        try:
            tuning = __utils__["omero_web_nginx.options"](tuning)
        except ValueError as exc:
            ret["comment"] = str(exc)
            return ret
        inputs["tuning"] = tuning
        inputs["tuner"] = __utils__["omero_web_nginx.revision"]()
    inputs_fp = _fingerprint(inputs)
    content = _current_if_fresh(name, inputs_fp) if version else None
    generated = content is None
    if generated:
        request = {
            "http": http,
            "servername": servername,
            "max_body_size": max_body_size,
            "location": location_only,
            "properties": properties,
        }
        content, failure = _generate_nginx(name, kind, version, inputs_fp, request, tuning, conn)
        if content is None:
            ret.update(failure)
            return ret
    upcoming = _omero_web_upcoming() if __opts__["test"] and not generated else None
    if upcoming:
        # This run's pip state upgrades or downgrades omero-web: the real run
        # regenerates the file with the new release (its header names it).
        ret["result"] = None
        ret["changes"] = {"omero_web": {"old": version, "new": upcoming}}
        ret["comment"] = f"{name} would be regenerated with omero-web {upcoming}"
        return ret
    ret = __states__["omero_web.nginx_file"](
        name,
        contents=content,
        user=user,
        group=group,
        mode=mode,
    )
    ret["name"] = name
    note = (
        f"generated with `omero web config {kind}`"
        if generated
        else "inputs unchanged, omero not run"
    )
    ret["comment"] = f"{ret.get('comment', '')} ({note})".strip()
    return ret


def _generate_nginx(name, kind, version, inputs_fp, request, tuning, conn):
    """
    ``(text, None)``: the file's text, from ``omero web config nginx``
    (``request``: its arguments) with the formula's additions (``tuning``) and
    the fingerprint header; or ``(None, {"result", "comment"})`` when it
    cannot be made (under ``test=True``, when omero cannot run yet: ``None``).
    """
    try:
        body = __salt__["omero.web_config_nginx"](**request, **conn)
    except (CommandExecutionError, SaltInvocationError) as exc:
        if __opts__["test"] and isinstance(exc, CommandExecutionError):
            return None, {
                "result": None,
                "comment": f"{name} would be generated with `omero web config {kind}`,"
                f" which cannot run yet: {exc}",
            }
        return None, {"result": False, "comment": f"omero web config {kind} failed: {exc}"}
    body = body.rstrip("\n")
    if tuning is not None:
        try:
            body = __utils__["omero_web_nginx.tune"](body, request["location"], tuning)
        except ValueError as exc:
            return None, {
                "result": False,
                "comment": f"{name}: omero-web {version}'s `omero web config {kind}` cannot be"
                f" tuned, nothing was written: {exc}",
            }
    return _header(kind, version, inputs_fp, body) + body + "\n", None


def _omero_web_upcoming():
    """Under test=True: the omero-web requirement this run's pip state
    (``omero_venv.packages_installed``) would install instead of the
    installed release, or None."""
    for key, result in (globals().get("__running__") or {}).items():
        parts = key.split("_|-")
        if len(parts) != 4 or (parts[0], parts[3]) != ("omero_venv", "packages_installed"):
            continue
        for dist, change in (result.get("changes") or {}).items():
            if re.sub(r"[-_.]+", "_", dist).lower() == "omero_web" and hasattr(change, "get"):
                return change.get("new")
    return None


def nginx_http_config(name, address, tuning=None, user=None, group=None, mode="0644"):
    """
    The http-level blocks that the location file of ``omero.nginx_config``
    with ``location_only`` and ``tuning`` names: the ``map`` giving static
    files their lifetime and the upstream (gunicorn at ``address``, with
    keepalive), in a file nginx loads at http level (e.g. conf.d), written
    (and tested with ``nginx -t``, ``omero_web.nginx_file``) before the
    location file.

    name
        The file, e.g. ``/etc/nginx/conf.d/omero-web-http.conf``.

    address
        gunicorn's ``host:port`` (an IPv6 host in brackets).

    tuning
        As for ``omero.nginx_config``.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if not isinstance(address, str) or not re.match(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$",
                                                      address):
        ret["comment"] = f"address: expected host:port, got {address!r}"
        return ret
    try:
        blocks = __utils__["omero_web_nginx.http_blocks"](address, tuning)
    except ValueError as exc:
        ret["comment"] = str(exc)
        return ret
    content = (
        "# Managed by Salt (omero-web-formula, nginx sls): http-level blocks that\n"
        "# OMERO.web's location file names (static files' lifetimes, gunicorn upstream).\n"
        + blocks
    )
    return __states__["omero_web.nginx_file"](
        name, contents=content, user=user, group=group, mode=mode)


def sessions_work(name, user=None, omerodir=None, venv=None):
    """
    OMERO.web can store sessions: one is written with its configured engine
    (file or Redis), read back and deleted (``omero.session_check``). Fails
    with the backend's error, e.g. a local Redis refusing the password.
    Changes nothing; under ``test=True`` it is not run (it would write).

    name
        An identifier.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret["comment"] = "OMERO.web's session store is checked after the apply"
        return ret
    try:
        engine = __salt__["omero.session_check"](user=user, omerodir=omerodir, venv=venv)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = "OMERO.web cannot store sessions: {}".format(
            __utils__["omero_web_secrets.scrub"](str(exc)))
        return ret
    ret["comment"] = "OMERO.web stores sessions ({})".format(engine)
    return ret
