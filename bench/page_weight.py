#!/usr/bin/env python3
"""Page weight of OMERO.web's login page in a real browser (issue 12, part 4).

Debian's headless Chromium (test/headless_chromium.py, the DevTools
protocol) loads the login page of a converged kitchen host through the
formula's nginx and, in the same run, through the walkthrough's literal
nginx (``omero web config nginx`` as it is, bench/walkthrough_nginx.py) on
another port of the same host. For each it prints:

* first visit (new, empty profile): requests, bytes transferred (DevTools'
  "transferred": headers and bodies as received), split into the site's own
  requests and third-party ones (the login page asks api.github.com for
  OMERO.insight's releases; unreachable here, it costs 0 bytes);
* repeat visit in the same browser (a new tab), and after the browser was
  closed and started again on the same profile (disk cache): how many
  static files still went to the network;
* the Cache-Control each static response carried (none: the browser's own
  heuristic lifetime, 10% of the file's age, decides).

Goals (issue 12): first visit <= 90 KB (90,000 bytes) of the site's own
requests; a repeat visit makes no network request for static files. Figures
are printed, never asserted.

    OMERO_WEB_PORT_OFFSET=2000 python3 bench/page_weight.py --host kt-pages [--walkthrough-port 2090]
"""
import argparse
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import walkthrough_nginx  # noqa: E402
import headless_chromium  # noqa: E402  (test/, put on sys.path by walkthrough_nginx)

GOAL_BYTES = 90000


def own(visit, origin):
    return [r for r in visit.requests if r.url.startswith(origin)]


def static(requests, static_url):
    return [r for r in requests if urllib.parse.urlsplit(r.url).path.startswith(static_url)]


def measure(label, origin, login_path, static_url):
    url = origin + login_path
    browser = headless_chromium.Browser()
    try:
        with browser:
            first = browser.visit(url)
            again = browser.visit(url)
        with headless_chromium.Browser(profile=browser.profile) as restarted:
            later = restarted.visit(url)
    finally:
        browser.remove_profile()
    mine = own(first, origin)
    third = [r for r in first.requests if r not in mine]
    print("\n== %s: %s" % (label, url))
    print("first visit: %d requests (%d static), %d bytes transferred by the site%s"
          % (len(mine), len(static(mine, static_url)), sum(r.encoded_bytes for r in mine),
             "; third-party: %s" % ", ".join("%s (%s, %d bytes)" % (
                 urllib.parse.urlsplit(r.url).netloc, r.error or r.status, r.encoded_bytes)
                 for r in third) if third else ""))
    for visit, what in ((again, "repeat visit, same browser"), (later, "repeat visit, browser restarted")):
        hits = [r for r in static(own(visit, origin), static_url) if r.network]
        print("%s: %d requests, %d bytes; static files from the network: %d%s"
              % (what, len(own(visit, origin)), sum(r.encoded_bytes for r in own(visit, origin)),
                 len(hits), (" (" + ", ".join(r.url.rsplit("/", 1)[-1] for r in hits) + ")") if hits else ""))
    lifetimes = {}
    for request in static(mine, static_url):
        lifetimes.setdefault(request.header("cache-control") or "none (heuristic)", []).append(
            request.url.rsplit("/", 1)[-1])
    for value, names in sorted(lifetimes.items()):
        print("Cache-Control %s: %d files" % (value, len(names)))
    encodings = {}
    for request in mine:
        encodings.setdefault(request.header("content-encoding") or "identity", 0)
        encodings[request.header("content-encoding") or "identity"] += 1
    print("Content-Encoding: %s" % ", ".join("%s %d" % kv for kv in sorted(encodings.items())))
    return sum(r.encoded_bytes for r in mine), [r for r in static(own(later, origin), static_url)
                                                if r.network]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("OMERO_WEB_IT_HOST", "omero-web-kitchen"))
    parser.add_argument("--walkthrough-port", type=int, default=None,
                        help="port for the walkthrough's nginx (default: the formula's + 10)")
    args = parser.parse_args()
    host, web = walkthrough_nginx.host_and_pillar(args.host)
    prefix = web.get("prefix") or ""
    port = web["nginx"]["port"]
    other = args.walkthrough_port or port + 10
    login, static_url = prefix + "/webclient/login/", prefix + "/static/"
    print("chromium: %s; host %s, prefix %r" % (headless_chromium.CHROMIUM, args.host, prefix))
    formula_bytes, formula_hits = measure("formula's nginx", "http://127.0.0.1:%d" % port, login, static_url)
    with walkthrough_nginx.served(host, web, other):
        measure("walkthrough's nginx (omero web config nginx as is)", "http://127.0.0.1:%d" % other,
                login, static_url)
    print("\ngoal: first visit <= %d bytes: %s (%d); repeat visit without static requests: %s"
          % (GOAL_BYTES, "met" if formula_bytes <= GOAL_BYTES else "NOT met", formula_bytes,
             "met" if not formula_hits else "NOT met"))


if __name__ == "__main__":
    main()
