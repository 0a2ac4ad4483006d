"""
Which omero-web version changes clear the session store
(``_utils/omero_web_upgrade.py``): upgrades and downgrades across 5.30
(session serializer) and 5.31 (Django 5.2), and the edges. The real host
proves the clearing itself (test/integration/test_90_upgrade.py).
"""

import pytest


@pytest.fixture
def upgrade(utils):
    return lambda name: utils["omero_web_upgrade." + name]


@pytest.mark.parametrize(
    "old,new,crossed",
    [
        ("5.29.3", "5.33.2", ["5.30", "5.31"]),
        ("5.33.2", "5.29.3", ["5.30", "5.31"]),  # a downgrade crosses them too
        ("5.29.3", "5.30.0", ["5.30"]),
        ("5.30.1", "5.31.0", ["5.31"]),
        ("5.31.0", "5.30.1", ["5.31"]),
        ("5.31.0", "5.33.2", []),
        ("5.22.1", "5.29.3", []),
        ("5.29.3", "5.29.3", []),
        ("5.29.3", "5.30.0rc1", ["5.30"]),  # a pre-release carries its release's change
        ("5.30", "5.31", ["5.31"]),  # two-part versions
        (None, "5.33.2", []),  # unknown: nothing to compare
        ("5.29.3", None, []),
        ("garbage", "5.33.2", []),
    ],
)
def test_session_clear_reasons(upgrade, old, new, crossed):
    reasons = upgrade("session_clear_reasons")(old, new)
    assert [why.split()[0] for why in reasons] == crossed


@pytest.mark.parametrize(
    "requirement,version",
    [
        ("==5.33.2", "5.33.2"),
        ("5.29.3", "5.29.3"),
        ("===5.29.3", "5.29.3"),
        (" == 5.31.0 ", "5.31.0"),
        (">=5.6.1", None),
        ("==5.33.*", None),
        ("==5.29.3,<5.30", None),
        ("", None),
        (None, None),
    ],
)
def test_exact_pin(upgrade, requirement, version):
    assert upgrade("exact_pin")(requirement) == version
