"""
The formula's one secret rule, shared by the ``omero`` and ``omero_web``
execution modules and the ``omero`` state module (``__utils__``).

A value is secret when

* its property is a known secret (:py:data:`KNOWN_SECRET_KEYS`: OMERO.web's
  ``omero.web.secret_key``, ``omero.web.public.password``,
  ``omero.web.email_host_password`` and OMERO.server's password properties),
  or one the pillar lists under ``omero_web:secret_keys``; or
* it holds a URL with a password (``redis://:PASSWORD@host:6379/0``), in
  any property, at any depth of a list or mapping; or
* it is the value of a secret pillar key (:py:data:`SECRET_PILLAR_KEYS`:
  ``public:password``, which becomes ``omero.web.public.password``, and
  ``redis:password``) in the formula's map.

Nothing else is: a boolean such as ``omero.web.show_forgot_password`` shows
as it is. A secret shows as :py:data:`MASK`, the one token, everywhere:
changes, comments, errors and logs. For a URL only its password is masked
(``redis://:********@127.0.0.1:6379/0``), so the rest stays readable.

Secrets the formula generates itself (a local Redis's password) are never
rendered into a state: the state receives a *reference*,
``@@omero-web-secret:<file>@@``, and reads the file (root's, mode 0600) at
apply time (:py:func:`resolve`).

Pure code: no ``__salt__``, no processes.
"""

import json
import re
from collections.abc import Mapping

MASK = "********"

#: Properties whose values are secrets whatever they hold.
KNOWN_SECRET_KEYS = frozenset(
    (
        "omero.web.secret_key",
        "omero.web.public.password",
        "omero.web.email_host_password",
        # OMERO.server's, for sites that manage them (allow_non_web_config).
        "omero.db.pass",
        "omero.ldap.password",
        "omero.security.keyStorePassword",
        "omero.security.trustStorePassword",
        "omero.glacier2.IceSSL.Password",
        # Redis's own password directive (the formula's redis.conf state)
        "requirepass",
    )
)

#: Pillar keys (``a:b`` below omero_web, or below its lookup) whose values
#: are secrets: they become a secret property or a service's password.
SECRET_PILLAR_KEYS = frozenset(("public:password", "redis:password"))

_REF = re.compile(r"@@omero-web-secret:(/[A-Za-z0-9._+/-]+)@@")

# scheme://[user]:password@ ; the password is group 2.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"']*:)([^\s@/\"']+)(@)")


def is_secret_key(key, secret_keys=()):
    """Whether property ``key`` is secret by name (known, or listed in pillar)."""
    return key in KNOWN_SECRET_KEYS or key in set(secret_keys or ())


def holds_url_password(value):
    """Whether ``value`` (text, list or mapping, at any depth) holds a URL with a password."""
    if isinstance(value, str):
        return bool(_URL_PASSWORD.search(value))
    if isinstance(value, Mapping):
        return any(holds_url_password(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_url_password(item) for item in value)
    return False


def is_secret(key, value=None, secret_keys=()):
    """Whether the value of ``key`` must be masked (by name, or by what it holds)."""
    return is_secret_key(key, secret_keys) or holds_url_password(value)


def mask_urls(text):
    """``text`` with the password of every URL in it replaced by the mask."""
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), str(text))


def mask_value(key, value, secret_keys=()):
    """What may be shown of ``key``'s ``value``: the mask, or the value with URL passwords masked."""
    if value is None:
        return None
    if is_secret_key(key, secret_keys):
        return MASK
    return _mask_structure(value)


def _mask_structure(value):
    if isinstance(value, str):
        return mask_urls(value) if holds_url_password(value) else value
    if isinstance(value, Mapping):
        return {k: _mask_structure(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_structure(v) for v in value]
    return value


def mask_changes(changes, secret_keys=()):
    """``{key: {"old": ..., "new": ...}}`` with every secret masked."""
    return {
        key: {side: mask_value(key, change.get(side), secret_keys) for side in ("old", "new")}
        if isinstance(change, Mapping)
        else mask_value(key, change, secret_keys)
        for key, change in changes.items()
    }


def mask_mapping(mapping, secret_keys=()):
    """``{key: value}`` with every secret masked (for comments and dumps)."""
    return {key: mask_value(key, value, secret_keys) for key, value in (mapping or {}).items()}


def secret_texts(values, secret_keys=()):
    """
    Every text that must not appear in a message: the values of secret keys
    (as text and as JSON) and the password of every URL, from ``values``, a
    ``{key: value}`` mapping or ``{key: [values]}``.
    """
    texts = set()
    for key, value in (values or {}).items():
        if is_secret_key(key, secret_keys) and value not in (None, ""):
            texts.add(str(value))
            if not isinstance(value, str):
                texts.add(json.dumps(value))
                texts.add(json.dumps(value, separators=(",", ":")))
        texts.update(_url_passwords(value))
    return {text for text in texts if text}


def _url_passwords(value):
    if isinstance(value, str):
        return {m.group(2) for m in _URL_PASSWORD.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(_url_passwords(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_url_passwords(v) for v in value)) if value else set()
    return set()


def scrub(text, texts=()):
    """``text`` with each of ``texts`` (longest first) and every URL password masked."""
    text = str(text)
    for secret in sorted(texts, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_urls(text)


def is_secret_pillar_key(parts):
    """Whether the omero_web pillar key at ``parts`` (``("public", "password")``) holds a secret."""
    parts = tuple(str(part) for part in parts)
    if parts[:1] == ("lookup",):
        parts = parts[1:]
    return ":".join(parts) in SECRET_PILLAR_KEYS


def mask_deep(value, secret_keys=(), _parts=()):
    """
    ``value`` (any structure, e.g. the formula's whole map) with the value of
    every secret key, wherever it stands, of the secret pillar keys
    (:py:data:`SECRET_PILLAR_KEYS`, when ``value`` is the map) and every URL
    password masked.
    """
    if isinstance(value, Mapping):
        return {
            key: MASK
            if item is not None and (
                (isinstance(key, str) and is_secret_key(key, secret_keys))
                or is_secret_pillar_key(_parts + (key,)))
            else mask_deep(item, secret_keys, _parts + (key,))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_deep(item, secret_keys, _parts + (index,)) for index, item in enumerate(value)]
    if isinstance(value, str) and holds_url_password(value):
        return mask_urls(value)
    return value


def ref(path):
    """The reference to the secret kept in file ``path`` (resolved by the states)."""
    return "@@omero-web-secret:{}@@".format(path)


def refs(value):
    """The files the references in ``value`` (any structure) name."""
    if isinstance(value, str):
        return set(_REF.findall(value))
    if isinstance(value, Mapping):
        return set().union(set(), *(refs(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(set(), *(refs(v) for v in value))
    return set()


def resolve(value, read):
    """
    ``value`` with every reference replaced by ``read(path)`` (the secret's
    text). ``read`` returns None for a secret that does not exist yet: the
    reference is then left as it is, and the caller knows the value is
    not final.
    """
    if isinstance(value, str):
        def repl(match):
            secret = read(match.group(1))
            return match.group(0) if secret is None else secret
        return _REF.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: resolve(v, read) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(v, read) for v in value]
    return value
