"""
OMERO's ``config.xml``: reading it, writing values the way OMERO.web parses
them, comparing values by meaning, and planning a set of changes. Shared by
the ``omero`` execution module (which runs the ``omero`` processes) and its
tests (``__utils__["omero_web_configxml.*"]``).

Pure code: no processes. The file layout is omero-py's
``omero.config.ConfigXml``: ``<icegrid><properties id="PROFILE">`` blocks,
the active profile named by ``omero.config.profile`` in the ``__ACTIVE__``
block (default ``default``).

Values are written the way OMERO.web parses them: lists and dicts as compact
JSON, booleans as ``true``/``false`` (``omeroweb.utils.parse_boolean``),
numbers as their text, strings as they are; they are compared by meaning,
so ``{"a": 1}`` equals ``{"a":1}``, ``True`` equals ``"true"`` and ``4080``
equals ``"4080"``.
"""

import json
import os
import re
import xml.etree.ElementTree as ET

from salt.exceptions import CommandExecutionError, SaltInvocationError

ACTIVE_BLOCK = "__ACTIVE__"
PROFILE_KEY = "omero.config.profile"
VERSION_KEY = "omero.config.version"
INTERNAL_KEYS = (PROFILE_KEY, VERSION_KEY)

# The property names `omero config set` accepts (prefs.assert_valid_property_name).
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def path(omerodir):
    """``$OMERODIR/etc/grid/config.xml``."""
    return os.path.join(omerodir, "etc", "grid", "config.xml")


def parse(text, where="config.xml"):
    """Properties of the active profile of a config.xml text, as ``{key: text}``."""
    if not text or not text.strip():
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CommandExecutionError(f"Cannot parse {where}: {exc}")
    blocks = {}
    for block in root.findall("./properties"):
        blocks.setdefault(block.get("id"), block)
    profile = "default"
    active = blocks.get(ACTIVE_BLOCK)
    if active is not None:
        for prop in active.findall("./property"):
            if prop.get("name") == PROFILE_KEY:
                profile = prop.get("value", "")
    block = blocks.get(profile)
    if block is None:
        return {}
    props = {}
    for prop in block.findall("./property"):
        name = prop.get("name")
        if name is not None and name not in INTERNAL_KEYS:
            props[name] = prop.get("value", "")
    return props


def read(omerodir):
    """
    Properties of the active profile of ``$OMERODIR``'s config.xml, read
    in-process (no omero process). A missing file (or OMERODIR) reads as empty.
    """
    where = path(omerodir)
    try:
        with open(where, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CommandExecutionError(f"Cannot read {where}: {exc}")
    return parse(text, where)


def render(properties):
    """
    A config.xml text holding ``properties`` ({key: text}) in its default
    profile, in omero-py's layout (for a throwaway OMERODIR).
    """
    root = ET.Element("icegrid")
    active = ET.SubElement(root, "properties", id=ACTIVE_BLOCK)
    ET.SubElement(active, "property", name=PROFILE_KEY, value="default")
    block = ET.SubElement(root, "properties", id="default")
    ET.SubElement(block, "property", name=VERSION_KEY, value="5.1.0")
    for key, text in sorted(properties.items()):
        ET.SubElement(block, "property", name=check_key(key), value=serialize(text, key))
    return ET.tostring(root, encoding="unicode") + "\n"


def serialize(value, key=None):
    """The text OMERO.web parses back into ``value``."""
    where = f"{key}: " if key else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise SaltInvocationError(f"{where}value is not JSON-serialisable: {exc}")
    if value is None:
        raise SaltInvocationError(f"{where}None is not a value (unset the key instead)")
    raise SaltInvocationError(f"{where}unsupported value type {type(value).__name__}")


def decode(text):
    """
    The meaning of a stored text: JSON when it decodes to something other
    than a string, a boolean for any spelling of true/false, else the text.
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if isinstance(value, str):
        return text
    return value


def _canonical(value):
    if isinstance(value, str):
        value = decode(value)
        if isinstance(value, str):
            return "s:" + value
    return "j:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def same(current, desired):
    """Whether two values (stored texts or Python values) mean the same to OMERO.web."""
    if current is None or desired is None:
        return current is None and desired is None
    if not isinstance(current, str):
        current = serialize(current)
    if not isinstance(desired, str):
        desired = serialize(desired)
    return current == desired or _canonical(current) == _canonical(desired)


def element_key(value):
    """A list element's identity: its canonical JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_key(key):
    """``key`` if it is a property name ``omero config`` accepts, else SaltInvocationError."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SaltInvocationError(f"Illegal property name: {key!r}")
    if key in INTERNAL_KEYS:
        raise SaltInvocationError(f"{key} is managed by omero itself")
    return key


def _check_mapping(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SaltInvocationError(
            f"{name}: expected a mapping of property names, got {type(value).__name__}"
        )
    for key in value:
        check_key(key)
    return value


def _as_elements(value):
    """Append/remove values: a list is a list of elements, anything else one element."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        try:
            json.dumps(item)
        except (TypeError, ValueError) as exc:
            raise SaltInvocationError(f"list element is not JSON: {exc}")
    return items


def normalize(properties=None, appends=None, removals=None, unsets=None):
    """
    Check and normalise a change request: ``(properties, appends, removals,
    unsets)``; a property given as None moves to ``unsets``. Raises
    SaltInvocationError for contradictions (a key both set and appended...).
    """
    properties = dict(_check_mapping("properties", properties))
    appends = {k: _as_elements(v) for k, v in _check_mapping("appends", appends).items()}
    removals = {k: _as_elements(v) for k, v in _check_mapping("removals", removals).items()}
    if unsets is None:
        unsets = []
    elif isinstance(unsets, str):
        unsets = [unsets]
    elif not isinstance(unsets, (list, tuple, set)):
        raise SaltInvocationError("unsets: expected a list of property names")
    unsets = [check_key(key) for key in unsets]
    for key in [k for k, v in properties.items() if v is None]:
        del properties[key]
        unsets.append(key)
    for key, value in properties.items():
        serialize(value, key)
    both = sorted(set(properties) & (set(appends) | set(removals) | set(unsets)))
    if both:
        raise SaltInvocationError(
            "set as a whole and also appended/removed/unset: " + ", ".join(both)
        )
    both = sorted(set(unsets) & (set(appends) | set(removals)))
    if both:
        raise SaltInvocationError("both unset and appended/removed: " + ", ".join(both))
    for key in set(appends) & set(removals):
        common = {element_key(v) for v in appends[key]} & {element_key(v) for v in removals[key]}
        if common:
            raise SaltInvocationError(f"{key}: the same value is appended and removed")
    return properties, appends, removals, sorted(set(unsets))


def defaults_needed(current, appends, removals, prune):
    """
    The list properties whose OMERO.web default the plan needs: an unset
    ``omero.web.*`` list appended to (or removed from) starts from it, as
    ``omero config append`` does; with ``prune`` an appended list is reset to it.
    """
    return sorted(
        key
        for key in set(appends) | set(removals)
        if key.startswith("omero.web.") and (key not in current or (prune and key in appends))
    )


def _current_list(key, text):
    try:
        value = json.loads(text)
    except ValueError:
        raise CommandExecutionError(f"{key}: No JSON object could be decoded")
    if not isinstance(value, list):
        raise CommandExecutionError(f"Property {key} is not a list")
    return value


def plan(current, properties, appends, removals, unsets, prune, prune_prefix, defaults):
    """
    ``{key: (old_text, new_text)}``: what must change in ``current`` ({key:
    text}) for the (normalised) request; a text None means unset.
    ``defaults`` holds OMERO.web's default list of each key
    :py:func:`defaults_needed` named.
    """
    changes = {}
    for key, value in properties.items():
        text = serialize(value, key)
        old = current.get(key)
        if old is None or not same(old, text):
            changes[key] = (old, text)

    for key in sorted(set(appends) | set(removals)):
        old = current.get(key)
        base = _current_list(key, old) if old is not None else defaults.get(key, [])
        # With prune, an appended list is exactly OMERO.web's default list plus
        # the declared values: values appended earlier and no longer declared
        # (or added by hand) are dropped.
        new = list(defaults.get(key, [])) if prune and key in appends else list(base)
        drop = {element_key(v) for v in removals.get(key, [])}
        new = [v for v in new if element_key(v) not in drop]
        present = {element_key(v) for v in new}
        for value in appends.get(key, []):
            if element_key(value) not in present:
                new.append(value)
                present.add(element_key(value))
        if [element_key(v) for v in new] == [element_key(v) for v in base]:
            # `omero config append --set` of values already there changes
            # nothing, not even an unset key.
            continue
        changes[key] = (old, json.dumps(new, separators=(",", ":")))

    for key in unsets:
        if key in current:
            changes[key] = (current[key], None)

    if prune:
        declared = set(properties) | set(appends) | set(removals) | set(unsets)
        for key in sorted(current):
            if key.startswith(prune_prefix or "") and key not in declared:
                changes[key] = (current[key], None)
    return changes


def display(changes):
    """``{key: (old_text, new_text)}`` as ``{key: {"old": value, "new": value}}``."""
    return {
        key: {"old": decode(old), "new": decode(new)} for key, (old, new) in sorted(changes.items())
    }
