"""
Day two: which omero-web version changes need more than a restart.

OMERO.web's upgrade notes say the session store must be cleared when the
session serializer or Django's major version changes: sessions written by
one cannot be decoded by the other (Django logs "Session data corrupted").
The boundaries are declared once here; an upgrade or a downgrade that
crosses one clears the store once, between the stop and the start of the
restart that switches versions (``omero_web.service_running``).

Pure code: no processes.
"""

import re

#: ``(first version on the new side, why)``: crossing one, either way,
#: clears the session store.
SESSION_BOUNDARIES = (
    ((5, 30, 0), "5.30 changed the session serializer (pickle -> JSON)"),
    ((5, 31, 0), "5.31 moved to Django 5.2 (from 4.2)"),
)

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_EXACT_PIN = re.compile(r"^\s*(?:===?)?\s*([0-9][0-9A-Za-z.+!-]*)\s*$")


def parse_version(text):
    """``"5.29.3"`` -> ``(5, 29, 3)``; a pre-release counts as its release
    (``5.30.0rc1`` -> ``(5, 30, 0)``: it carries the change); None if not a version."""
    if not isinstance(text, str):
        return None
    found = _VERSION.match(text)
    if not found:
        return None
    return tuple(int(part or 0) for part in found.groups())


def exact_pin(requirement):
    """The version an exact pin names (``"==5.33.2"`` or the pillar's bare
    ``"5.33.2"`` -> ``"5.33.2"``), else None
    (a range: only pip knows what it resolves to)."""
    if not isinstance(requirement, str):
        return None
    found = _EXACT_PIN.match(requirement)
    if not found or "*" in requirement or "," in requirement:
        return None
    return found.group(1)


def session_clear_reasons(old, new):
    """
    Why going from omero-web ``old`` to ``new`` (upgrade or downgrade) must
    clear the session store: the boundaries crossed, oldest first. ``[]``
    when nothing is crossed or either version is unknown.
    """
    old_v, new_v = parse_version(old), parse_version(new)
    if old_v is None or new_v is None or old_v == new_v:
        return []
    low, high = min(old_v, new_v), max(old_v, new_v)
    return [why for first, why in SESSION_BOUNDARIES if low < first <= high]
