"""
States of omero-web-formula that Salt has no built-in for.

``redis_directives``: ``directive value`` lines in the Redis package's own
configuration file, like ``file.replace`` but knowing what the package
ships, so that a dry run before the package is installed predicts exactly
what the real apply then changes.

.. code-block:: yaml

    /etc/redis/redis.conf:
      omero_web.redis_directives:
        - directives:
            port: 6380
        - package_defaults:
            port: 6379
"""

import grp
import os
import pwd
import re

__virtualname__ = "omero_web"


def __virtual__():
    return __virtualname__


def _find(lines, directive):
    """(index of the last active line, index of the first commented one) for ``directive``."""
    active = commented = None
    pattern = re.compile(r"^(#\s*)?" + re.escape(directive) + r"[ \t]+\S")
    for index, line in enumerate(lines):
        match = pattern.match(line.strip())
        if not match:
            continue
        if match.group(1):
            commented = commented if commented is not None else index
        else:
            active = index
    return active, commented


def _value(lines, directive):
    active, _ = _find(lines, directive)
    if active is None:
        return None
    return lines[active].strip().split(None, 1)[1].strip()


def _apply(lines, directives):
    """Lines with each directive set: its last active line replaced, else a commented one, else appended."""
    lines = list(lines)
    for directive, value in directives.items():
        text = "{} {}".format(directive, value)
        active, commented = _find(lines, directive)
        if active is not None:
            lines[active] = text
        elif commented is not None:
            lines[commented] = text
        else:
            lines.append(text)
    return lines


def redis_directives(name, directives, package_defaults=None):
    """
    Ensure each ``directive value`` of ``directives`` in the Redis
    configuration file ``name`` (Redis reads the last occurrence; the
    formula replaces that one, or uncomments the package's commented
    example, or appends).

    name
        The file, e.g. ``/etc/redis/redis.conf``. It is the package's: it
        must exist for a real apply.

    directives
        ``{directive: value}``, e.g. ``{port: 6380}`` or ``{unixsocket:
        /run/redis/redis-server.sock, unixsocketperm: 770}``.

    package_defaults
        What the package's file says when it is not installed yet (e.g.
        ``{port: 6379}``; a directive not named here is commented out in
        it), so that a dry run on a fresh host predicts the changes.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    wanted = {str(k): str(v) for k, v in (directives or {}).items()}
    if not os.path.exists(name):
        if not __opts__["test"]:
            ret["comment"] = "{} does not exist (is Redis installed?)".format(name)
            return ret
        defaults = {str(k): str(v) for k, v in (package_defaults or {}).items()}
        changes = {
            key: {"old": defaults.get(key), "new": value}
            for key, value in wanted.items()
            if defaults.get(key) != value
        }
        ret["result"] = None if changes else True
        ret["changes"] = changes
        ret["comment"] = "{} is not installed yet: {}".format(
            name, "would set " + ", ".join(sorted(changes)) if changes else "the package's values are wanted"
        )
        return ret
    with open(name, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    changes = {
        key: {"old": _value(lines, key), "new": value}
        for key, value in wanted.items()
        if _value(lines, key) != value
    }
    if not changes:
        ret["result"] = True
        ret["comment"] = "{} already sets {}".format(name, ", ".join(sorted(wanted)))
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = "would set " + ", ".join(sorted(changes))
        return ret
    # file.managed writes it: same owner and mode, atomic replace.
    stat = os.stat(name)
    written = __states__["file.managed"](
        name,
        contents="\n".join(_apply(lines, wanted)) + "\n",
        user=pwd.getpwuid(stat.st_uid).pw_name,
        group=grp.getgrgid(stat.st_gid).gr_name,
        mode="0{:o}".format(stat.st_mode & 0o7777),
        show_changes=False,
    )
    if not written["result"]:
        ret["comment"] = written["comment"]
        return ret
    with open(name, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    left = {key for key, value in wanted.items() if _value(lines, key) != value}
    if left:
        ret["comment"] = "{} still does not set {}".format(name, ", ".join(sorted(left)))
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = "set " + ", ".join(sorted(changes))
    return ret
