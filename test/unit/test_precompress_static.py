"""
The unit's precompression of OMERO.web's static files for nginx's
gzip_static (omero_web/files/default/omero-web-precompress-static.py.jinja),
run for real on a directory tree; and what derive gives the unit.

On a real host, with nginx sending the .gz files and a restart making them
again: test/integration/test_75_fast_pages.py.
"""

import gzip
import os
import subprocess

import pytest

from unit_support import FORMULA, build, installed_script



@pytest.fixture
def script(tmp_path):
    return installed_script("omero-web-precompress-static.py.jinja", tmp_path / "omero-web-precompress-static")


@pytest.fixture
def static(tmp_path):
    root = tmp_path / "static"
    (root / "webclient" / "css").mkdir(parents=True)
    (root / "webgateway" / "img").mkdir(parents=True)
    (root / "webclient" / "css" / "layout.css").write_text("body { margin: 0 }\n" * 200)
    (root / "webclient" / "app.js").write_text("var a = 1;\n" * 300)
    (root / "webclient" / "tiny.js").write_text("var a;\n")  # < 256 bytes
    (root / "webgateway" / "img" / "logo.png").write_bytes(os.urandom(4096))
    (root / "webgateway" / "random.json").write_bytes(os.urandom(2048).hex().encode()[:2048])
    return root


def run(script, *args):
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, check=False)


def test_writes_gz_next_to_text_files_with_their_mtime(script, static):
    css = static / "webclient" / "css" / "layout.css"
    os.utime(css, (1_700_000_000, 1_700_000_000))
    done = run(script, static, 6)
    assert done.returncode == 0, done.stderr
    made = sorted(str(p.relative_to(static)) for p in static.rglob("*.gz"))
    # the png is not text, tiny.js is below 256 bytes; random hex compresses
    assert made == ["webclient/app.js.gz", "webclient/css/layout.css.gz", "webgateway/random.json.gz"]
    assert gzip.decompress((static / "webclient/css/layout.css.gz").read_bytes()) == css.read_bytes()
    assert os.stat(str(css) + ".gz").st_mtime == 1_700_000_000
    assert not list(static.rglob("*.omero-web-formula-tmp"))
    assert "precompressed 3 static files" in done.stdout


def test_remove_deletes_only_what_it_makes(script, static):
    assert run(script, static, 6).returncode == 0
    shipped = static / "webgateway" / "img" / "logo.png.gz"  # not a text suffix: not the script's
    shipped.write_bytes(b"x")
    done = run(script, "--remove", static, 6)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in static.rglob("*.gz")] == ["logo.png.gz"]
    assert (static / "webclient" / "app.js").exists()


def test_a_changed_file_gets_a_new_gz_after_remove_and_compress(script, static):
    app = static / "webclient" / "app.js"
    assert run(script, static, 6).returncode == 0
    app.write_text("var b = 2;\n" * 300)  # what collectstatic does on an upgrade
    assert run(script, "--remove", static, 6).returncode == 0
    assert not (static / "webclient" / "app.js.gz").exists()
    assert run(script, static, 9).returncode == 0
    assert gzip.decompress((static / "webclient" / "app.js.gz").read_bytes()) == app.read_bytes()


def test_missing_root_is_the_first_start(script, tmp_path):
    assert run(script, tmp_path / "not-yet", 6).returncode == 0


@pytest.mark.parametrize("args", [[], ["/x"], ["/x", "10"], ["/x", "six"], ["--remove", "/x"]])
def test_bad_arguments(script, args):
    done = run(script, *args)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_derive_precompress_follows_nginx_and_gzip():
    mapdata, _ = build({})
    got = FORMULA.derive.precompress(mapdata)
    assert got == {"script": "/usr/local/libexec/omero-web-precompress-static",
                   "static_root": mapdata["omerodir"] + "/var/static", "level": 6}
    for overrides in ({"nginx": {"gzip": False}}, {"nginx": {"gzip_static": False}},
                      {"nginx": {"enabled": False}}):
        assert FORMULA.derive.precompress(build(overrides)[0]) is None, overrides
    assert FORMULA.derive.precompress(build({"nginx": {"gzip": 9}})[0])["level"] == 9


def test_static_root_from_config_reaches_nginx_unit_and_precompress():
    mapdata, _ = build({"config": {"omero.web.static_root": "/srv/omero-static"},
                        "service": {"hardening": ["ProtectSystem=strict"]}})
    assert FORMULA.derive.precompress(mapdata)["static_root"] == "/srv/omero-static"
    assert FORMULA.derive.static_root(mapdata) == "/srv/omero-static"
    assert "ReadWritePaths=-/srv/omero-static" in FORMULA.derive.unit_directives(mapdata)


@pytest.mark.parametrize("value", ["relative/static", "/srv/a b", "/srv/x;y", "/usr", "/srv/../etc"])
def test_static_root_in_config_must_be_a_plain_own_directory(value):
    mapdata, pillar = build({"config": {"omero.web.static_root": value}})
    problems = FORMULA.validate.errors(mapdata, pillar, FORMULA.schema)
    assert any("omero_web:config:omero.web.static_root:" in p for p in problems), problems
