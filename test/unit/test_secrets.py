"""
The formula's one secret rule (``_utils/omero_web_secrets.py``), through
Salt's real utility loader: known secret properties, the pillar's
``secret_keys``, and any value holding a URL with a password; one mask.
"""

import pytest


@pytest.fixture
def secrets(utils):
    return lambda name: utils["omero_web_secrets." + name]


MASK = "********"


@pytest.mark.parametrize(
    "key,value,extra,secret",
    [
        ("omero.web.secret_key", "x", (), True),
        ("omero.web.public.password", "x", (), True),
        ("omero.web.email_host_password", "x", (), True),
        ("omero.db.pass", "x", (), True),
        ("omero.web.my_token", "x", ("omero.web.my_token",), True),
        ("omero.web.my_token", "x", (), False),
        # a name is not a rule: booleans and other values show as they are
        ("omero.web.show_forgot_password", True, (), False),
        ("omero.mail.pass", "x", (), False),
        ("omero.web.caches", {"default": {"LOCATION": "redis://:pw@h:6379/0"}}, (), True),
        ("omero.web.caches", {"default": {"LOCATION": "redis://h:6379/0"}}, (), False),
        ("omero.web.x", ["a", "ftp://user:pw@host/x"], (), True),
        ("omero.web.x", "https://example.org/@home", (), False),
    ],
)
def test_is_secret(secrets, key, value, extra, secret):
    assert secrets("is_secret")(key, value, extra) is secret


def test_one_mask_for_changes(secrets):
    changes = {
        "omero.web.secret_key": {"old": None, "new": "k"},
        "omero.web.caches": {"old": None, "new": {"default": {"LOCATION": "redis://:pw@h:6379/0"}}},
        "omero.web.show_forgot_password": {"old": True, "new": False},
    }
    assert secrets("mask_changes")(changes) == {
        "omero.web.secret_key": {"old": None, "new": MASK},
        "omero.web.caches": {"old": None, "new": {"default": {"LOCATION": "redis://:" + MASK + "@h:6379/0"}}},
        "omero.web.show_forgot_password": {"old": True, "new": False},
    }


def test_scrub_removes_every_secret_text(secrets):
    values = {"omero.web.secret_key": "k3y-value", "omero.web.caches": "redis://:pw-value@h/0"}
    texts = secrets("secret_texts")(values)
    message = secrets("scrub")("bad k3y-value and redis://:pw-value@h/0 and pw-value", texts)
    assert "k3y-value" not in message and "pw-value" not in message
    assert message.count(MASK) == 3


def test_mask_deep_masks_a_whole_map(secrets):
    data = {"config": {"omero.web.secret_key": "k"}, "sessions": {"redis_url": "redis://:p@h/0"},
            "apps": [{"config": {"omero.web.public.password": "p2"}}], "prefix": "/omero"}
    assert secrets("mask_deep")(data) == {
        "config": {"omero.web.secret_key": MASK},
        "sessions": {"redis_url": "redis://:" + MASK + "@h/0"},
        "apps": [{"config": {"omero.web.public.password": MASK}}],
        "prefix": "/omero",
    }


def test_a_reference_inside_a_url_resolves(secrets):
    ref = secrets("ref")("/etc/omero-web/redis-password")
    url = "redis://:" + ref + "@127.0.0.1:6379/0"
    assert secrets("refs")(url) == {"/etc/omero-web/redis-password"}
    read = {"/etc/omero-web/redis-password": "s3cret"}.get
    assert secrets("resolve")(url, read) == "redis://:s3cret@127.0.0.1:6379/0"
    # not yet generated: the reference stays
    assert secrets("resolve")(url, {}.get) == url


def test_mask_deep_masks_the_secret_pillar_keys_of_the_map(secrets):
    data = {"public": {"user": "public-user", "password": "pub-pw"},
            "redis": {"password": "redis-pw"}, "lookup": {"redis": {"password": "lk-pw"}},
            "nginx": {"password": "not a secret key"}}
    assert secrets("mask_deep")(data) == {
        "public": {"user": "public-user", "password": MASK},
        "redis": {"password": MASK}, "lookup": {"redis": {"password": MASK}},
        "nginx": {"password": "not a secret key"},
    }
