"""
The pure config.xml code (``_utils/omero_web_configxml.py``): how values are
written and compared, how config.xml is parsed and rendered, what a change
request plans. Through Salt's real utility loader (``__utils__``).
"""

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from unit_support import write_config


@pytest.fixture
def xml(utils):
    return lambda name: utils["omero_web_configxml." + name]


@pytest.mark.parametrize(
    "value,text",
    [
        (True, "true"),
        (False, "false"),
        (4080, "4080"),
        (0.5, "0.5"),
        ("/omero", "/omero"),
        ([["localhost", 4064, "omero"]], '[["localhost",4064,"omero"]]'),
        ({"a": 1, "b": [True, None]}, '{"a":1,"b":[true,null]}'),
        ((1, 2), "[1,2]"),
    ],
)
def test_serialize(xml, value, text):
    assert xml("serialize")(value) == text


@pytest.mark.parametrize("value", [None, object(), {"a": object()}])
def test_serialize_rejects(xml, value):
    with pytest.raises(SaltInvocationError):
        xml("serialize")(value, "omero.web.x")


@pytest.mark.parametrize(
    "stored,desired",
    [
        ('{"a": 1, "b": 2}', {"b": 2, "a": 1}),
        ('{"a": 1}', '{"a":1}'),
        ("true", True),
        ("True", True),
        ("TRUE", "true"),
        ("false", False),
        ("4080", 4080),
        ("4080", "4080"),
        ('[["localhost", 4064, "omero"]]', [["localhost", 4064, "omero"]]),
        ("/omero", "/omero"),
    ],
)
def test_same_meaning(xml, stored, desired):
    assert xml("same")(stored, desired)


@pytest.mark.parametrize(
    "stored,desired",
    [
        ('"/omero"', "/omero"),  # a quoted string is not the string
        ("1", True),  # an int is not a boolean
        ("true", "yes"),
        ("[1, 2]", [2, 1]),  # list order matters
        ("4080", 4081),
        ("", False),
    ],
)
def test_different_meaning(xml, stored, desired):
    assert not xml("same")(stored, desired)


def test_render_is_read_back_the_same(xml, tmp_path):
    props = {"omero.web.prefix": "/omero", "omero.web.server_list": [["h", 4064, "o"]],
             "omero.web.debug": False}
    grid = tmp_path / "etc" / "grid"
    grid.mkdir(parents=True)
    (grid / "config.xml").write_text(xml("render")(props))
    read = xml("read")(str(tmp_path))
    assert {k: xml("decode")(v) for k, v in read.items()} == props


def test_parse_reads_the_active_profile(xml, tmp_path):
    write_config(tmp_path, {"omero.web.prefix": "/p"}, profile="other",
                 active_extra={"omero.web.prefix": "/stale-copy"})
    assert xml("read")(str(tmp_path)) == {"omero.web.prefix": "/p"}


def test_parse_error_names_the_file(xml):
    with pytest.raises(CommandExecutionError, match="Cannot parse /x/config.xml"):
        xml("parse")("<icegrid><properties", "/x/config.xml")


def test_plan_is_pure(xml):
    normalize, plan = xml("normalize"), xml("plan")
    current = {"omero.web.apps": '["a"]', "omero.web.prefix": "/old", "omero.web.stale": "1"}
    request = normalize({"omero.web.prefix": "/omero"}, {"omero.web.apps": ["b"]}, None, None)
    assert xml("defaults_needed")(current, request[1], request[2], prune=True) == ["omero.web.apps"]
    changes = plan(current, *request, prune=True, prune_prefix="omero.web.",
                   defaults={"omero.web.apps": []})
    assert xml("display")(changes) == {
        "omero.web.apps": {"old": ["a"], "new": ["b"]},
        "omero.web.prefix": {"old": "/old", "new": "/omero"},
        "omero.web.stale": {"old": 1, "new": None},
    }
