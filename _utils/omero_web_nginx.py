"""
What the formula adds to the nginx text ``omero web config nginx`` (or
``nginx-location``) generates, so that pages load fast:

* compression (gzip) of text responses, static and proxied, in the static
  location and in the location proxying to gunicorn;
* precompressed static files (``gzip_static``): nginx sends the FILE.gz
  that the unit writes after each ``omero web start`` (the formula's
  ``omero-web-precompress-static``) as it is, and compresses only when
  there is none;
* a cache lifetime for static files (``expires``): long for the URLs
  OMERO.web versions (``?_5.33.2``: a new release changes them), shorter
  for the others (images named in stylesheets, a few scripts), chosen by a
  ``map`` on the query string;
* open files cached (``open_file_cache``) in the static location: without
  it, ``gzip_static`` costs a client that asks for no compression a look
  for FILE.gz on every request (measured: 13% fewer requests/s than the
  walkthrough's nginx for jQuery); a file changed on disk is seen within
  :py:data:`OPEN_FILE_CACHE_VALID`;
* connections to gunicorn kept alive (``keepalive`` in the upstream block,
  HTTP/1.1 and an empty Connection header in the proxy location: that
  location already sets proxy_set_header, so it inherits none of the
  server's);
* proxied responses stay unbuffered (``proxy_buffering off``, OMERO's own
  choice, for downloads): checked, never changed.

The generated text is edited at anchors of OMERO's templates (identical in
omero-web 5.29.3 and 5.33.2); when an anchor is missing or appears twice
(a new omero-web changed its template), :py:func:`tune` raises
:py:class:`TemplateChanged` naming it, and nothing is written. For
``nginx-location`` (the HTTPS server and ``location_only``), whose text has
no upstream block and may not hold http-level blocks, the ``map`` and the
upstream go into a file of their own (:py:func:`http_blocks`), which nginx
loads at http level (conf.d) before the location file that names them.

Pure code: no processes, no other utility module.
"""

import re

#: Bumped when the text this module writes changes: part of the nginx
#: file's fingerprint, so a formula update regenerates it.
REVISION = "3"

#: Content types compressed (text/html always is, in nginx).
GZIP_TYPES = (
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
    "text/plain",
    "text/xml",
    "application/xml",
)

#: OMERO.web's versioned static URLs: ``?_<omero-web version>``.
VERSIONED_ARGS = r"~^_[0-9][0-9A-Za-z.+-]*$"

#: Names used by the location file (HTTPS, location_only) and its http file.
LOCATION_UPSTREAM = "omeroweb_formula"
LOCATION_MAX_AGE_VAR = "$omeroweb_formula_static_max_age"

#: How long nginx trusts a cached open file (and a cached "no FILE.gz")
#: before it looks at the disk again: a static file a site replaces by hand,
#: or an upgrade collects, is served new at most this long after.
OPEN_FILE_CACHE_VALID = "2s"

DEFAULTS = {
    "gzip_level": 6,
    "gzip_static": 1,
    "static_max_age": 31536000,
    "static_unversioned_max_age": 86400,
    "keepalive": 16,
    "keepalive_timeout_ms": 1000,
    "open_file_cache": 1000,
}


class TemplateChanged(ValueError):
    """OMERO's generated nginx text does not have the shape the formula edits."""


def revision():
    """The revision of what this module writes (for fingerprints)."""
    return REVISION


def options(tuning):
    """``tuning`` checked and completed with :py:data:`DEFAULTS`."""
    merged = dict(DEFAULTS)
    merged.update(tuning or {})
    for key, value in merged.items():
        if key not in DEFAULTS:
            raise ValueError("nginx tuning: unknown option %r" % key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("nginx tuning: %s must be an integer >= 0, got %r" % (key, value))
    if merged["gzip_static"] > 1:
        raise ValueError("nginx tuning: gzip_static must be 0 or 1, got %r" % merged["gzip_static"])
    if merged["gzip_level"] > 9:
        raise ValueError("nginx tuning: gzip_level must be 0-9, got %r" % merged["gzip_level"])
    return merged


def _max_age(seconds):
    return str(seconds) if seconds else "off"


def max_age_map(variable, opts):
    """The http-level ``map`` choosing a static file's lifetime from its query string."""
    return (
        "# static files: OMERO.web's versioned URLs (?_<version>) for long, the others less\n"
        "map $args %s {\n"
        "    \"%s\" %s;\n"
        "    default %s;\n"
        "}\n"
    ) % (variable, VERSIONED_ARGS, _max_age(opts["static_max_age"]),
         _max_age(opts["static_unversioned_max_age"]))


def _gzip_lines(opts):
    if not opts["gzip_level"]:
        return []
    return [
        "gzip on;",
        "gzip_comp_level %d;" % opts["gzip_level"],
        "gzip_min_length 256;",
        "gzip_proxied any;",
        "gzip_vary on;",
        "gzip_types %s;" % " ".join(GZIP_TYPES),
    ]


def _open_file_cache_lines(opts):
    if not opts["open_file_cache"]:
        return []
    return [
        "open_file_cache max=%d inactive=60s;" % opts["open_file_cache"],
        "open_file_cache_valid %s;" % OPEN_FILE_CACHE_VALID,
        # remember "no FILE.gz" too: most lookups gzip_static makes
        "open_file_cache_errors on;",
    ]


def _keepalive_lines(opts):
    if not opts["keepalive"]:
        return []
    return [
        "keepalive %d;" % opts["keepalive"],
        # below gunicorn's --keep-alive: nginx closes an idle connection
        # before gunicorn does, and never sends on one gunicorn closed
        "keepalive_timeout %dms;" % max(opts["keepalive_timeout_ms"], 1),
    ]


def upstream_block(name, address, opts):
    """An upstream block for gunicorn at ``address`` (host:port), as OMERO writes it, plus keepalive."""
    lines = ["upstream %s {" % name, "    server %s fail_timeout=0;" % address]
    lines += ["    " + line for line in _keepalive_lines(opts)]
    return "\n".join(lines + ["}"]) + "\n"


def http_blocks(address, tuning=None):
    """
    The http-level file for the location file (HTTPS server, location_only):
    the static lifetime ``map`` and the upstream block it proxies to.
    """
    opts = options(tuning)
    return max_age_map(LOCATION_MAX_AGE_VAR, opts) + "\n" + upstream_block(
        LOCATION_UPSTREAM, address, opts)


def _one(pattern, text, what):
    found = list(re.finditer(pattern, text, re.MULTILINE))
    if len(found) != 1:
        raise TemplateChanged(
            "the generated nginx text has %s %s (expected exactly one): the formula "
            "knows omero-web's nginx templates of 5.29-5.33; see _utils/omero_web_nginx.py"
            % ("no" if not found else str(len(found)), what))
    return found[0]


def tune(text, location_only=False, tuning=None):
    """
    OMERO's generated nginx text with the formula's additions. ``text`` is
    the output of ``omero web config nginx`` (``location_only`` false) or
    ``nginx-location`` (true). Raises TemplateChanged when an anchor is not
    found exactly once.
    """
    opts = options(tuning)
    indent = "    " if location_only else "        "
    static = _one(
        r"^(?P<i>[ ]*)location (?P<url>/\S*) \{\n(?P=i)[ ]+alias (?P<root>\S+);$",
        text, "static location (location STATIC_URL { alias STATIC_ROOT; })")
    proxy = _one(r"^[ ]*location @proxy_to_app(?P<suffix>\w*) \{$", text,
                 "proxy location (location @proxy_to_app...)")
    suffix = proxy.group("suffix")
    buffering = _one(r"^[ ]*proxy_buffering off;$", text[proxy.end():],
                     "proxy_buffering off in the proxy location")
    del buffering  # checked: proxied responses stay unbuffered
    if location_only:
        upstream = None
        variable = LOCATION_MAX_AGE_VAR
        pass_re = r"^[ ]*proxy_pass http://(?P<address>[^;/\s]+);$"
    else:
        upstream = _one(
            r"^upstream omeroweb%s \{\n[ ]*server (?P<address>\S+) fail_timeout=0;$" % suffix,
            text, "upstream block (upstream omeroweb... { server ... fail_timeout=0; })")
        variable = "$omeroweb%s_static_max_age" % suffix
        pass_re = r"^[ ]*proxy_pass http://omeroweb%s;$" % suffix
    proxy_pass = _one(pass_re, text[proxy.end():], "proxy_pass in the proxy location")

    static_lines = []
    if opts["static_max_age"] or opts["static_unversioned_max_age"]:
        static_lines.append("expires %s;" % variable)
    static_lines += _gzip_lines(opts)
    if opts["gzip_level"] and opts["gzip_static"]:
        static_lines.append("gzip_static on;")
    static_lines += _open_file_cache_lines(opts)
    proxy_lines = list(_gzip_lines(opts))
    if opts["keepalive"]:
        proxy_lines += ['proxy_http_version 1.1;', 'proxy_set_header Connection "";']

    # edit from the end of the text backwards, so earlier offsets stay valid
    edits = []
    pass_start = proxy.end() + proxy_pass.start()
    pass_end = proxy.end() + proxy_pass.end()
    if location_only and opts["keepalive"]:
        line = text[pass_start:pass_end]
        edits.append((pass_start, pass_end,
                      line.replace("http://" + proxy_pass.group("address"),
                                   "http://" + LOCATION_UPSTREAM)))
    # the proxy location's additions go right after its opening line
    edits.append((proxy.end(), proxy.end(), "".join("\n%s%s" % (indent, l) for l in proxy_lines)))
    edits.append((static.end(), static.end(), "".join("\n%s%s" % (indent, l) for l in static_lines)))
    if upstream is not None:
        keep = _keepalive_lines(opts)
        edits.append((upstream.end(), upstream.end(), "".join("\n    %s" % l for l in keep)))
        if opts["static_max_age"] or opts["static_unversioned_max_age"]:
            # http level, before the upstream block
            edits.append((upstream.start(), upstream.start(), max_age_map(variable, opts) + "\n"))
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text
