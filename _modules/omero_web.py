"""
The formula's own logic, for ``map.jinja``: validate the ``omero_web``
pillar and derive what the states apply from it.

Thin over the formula's utility modules (``_utils/``, synced with the rest
by ``saltutil.sync_all``): the pillar schema (``omero_web_schema``), the
derivation (``omero_web_derive``) and the secret rule
(``omero_web_secrets``). Pure: it runs no process.

.. code-block:: jinja

    {%- do salt["omero_web.validate"](mapdata, pillar=salt["pillar.get"]("omero_web")) %}
    {%- do mapdata.update({"derived": salt["omero_web.derive"](mapdata, grains)}) %}
"""

import types

from salt.exceptions import SaltInvocationError

__virtualname__ = "omero_web"

ROOT = "omero_web"


#: What derive uses of the other utility modules (utility modules get no
#: ``__utils__``: these are handed to it).
_DERIVE_USES = {
    "omero_web_schema": ("direct_properties", "owned_properties", "version_spec", "join_specifiers"),
    "omero_web_secrets": ("is_secret",),
}


def _module(name):
    """Utility module ``name`` as an object with the functions derive uses, resolved here."""
    return types.SimpleNamespace(
        **{function: __utils__[name + "." + function] for function in _DERIVE_USES[name]}
    )


def __virtual__():
    if "omero_web_schema.errors" not in __utils__:
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
    return [mask(problem) for problem in __utils__["omero_web_schema.errors"](mapdata, pillar)]


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
        mapdata, grains, _module("omero_web_schema"), _module("omero_web_secrets")
    )


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
