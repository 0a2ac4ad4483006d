"""Debian's headless Chromium, driven through the DevTools protocol.

Used by the browser tests (test/integration/test_76_browser.py) and the page
weight benchmark (bench/page_weight.py): a page is loaded as a person's
browser loads it, and what the browser did is returned: every request with
its status, the bytes it cost on the wire (DevTools' "transferred": headers
and body as received, 0 for a cached response), whether it came from the
cache or failed; the console's errors; the page's DOM (a JavaScript
expression evaluated in it); a PNG screenshot.

Chromium speaks the protocol on a pipe (``--remote-debugging-pipe``: it
reads commands on fd 3 and writes answers and events on fd 4, one JSON
message per NUL-terminated record), so this needs nothing beyond the
standard library and the ``chromium`` package (``apt-get install
chromium``). Each Browser has its own profile directory: a new one is a
first visit; a Browser started again on the same profile is a repeat visit
(its disk cache holds what the first one stored).
"""
import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("OMERO_WEB_CHROMIUM", "/usr/bin/chromium")
# What a headless Chromium needs as root in a container, and no traffic of
# its own (no QUIC, component updates, sync or background requests).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--window-size=1280,900",
)


class BrowserError(Exception):
    """Chromium could not be started, or did not answer."""


def available():
    """Whether Debian's chromium is installed (the tests install it: test/run-tests)."""
    return os.access(CHROMIUM, os.X_OK)


class Request:
    """One request the page made (a redirect is a request of its own)."""

    __slots__ = ("url", "method", "type", "status", "encoded_bytes", "from_cache",
                 "failed", "error", "headers", "finished")

    def __init__(self, url, method, rtype):
        self.url, self.method, self.type = url, method, rtype
        self.status = None
        self.encoded_bytes = 0
        self.from_cache = False
        self.failed = False
        self.error = ""
        self.headers = {}
        self.finished = False

    @property
    def network(self):
        """Whether the request went to the server (not answered from the cache)."""
        return not self.from_cache and not self.url.startswith(("data:", "blob:", "about:"))

    def header(self, name):
        return self.headers.get(name.lower(), "")

    def __repr__(self):
        return "<%s %s %s %dB%s%s>" % (
            self.method, self.url, self.status, self.encoded_bytes,
            " cache" if self.from_cache else "", " FAILED " + self.error if self.failed else "")


def browser_origin(origin):
    """``origin`` as the browser writes URLs: without the scheme's default port
    (``http://127.0.0.1:80`` is ``http://127.0.0.1``)."""
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[: -len(port)]
    return origin


class Visit:
    """What the browser did while loading one URL."""

    def __init__(self, url):
        self.url = url
        self.requests = []
        self.console_errors = []
        self.final_url = ""
        self.dom = None
        self.screenshot = b""

    @property
    def transferred(self):
        return sum(r.encoded_bytes for r in self.requests)

    def failed_requests(self):
        """Requests that failed or answered 4xx/5xx."""
        return [r for r in self.requests if r.failed or (r.status or 0) >= 400]

    def network_requests(self):
        return [r for r in self.requests if r.network]

    def own(self, origin):
        """The requests to ``origin`` (e.g. ``http://127.0.0.1:2080``): the site's own."""
        origin = browser_origin(origin)
        return [r for r in self.requests if r.url.startswith(origin + "/")]

    def third_party(self, origin):
        origin = browser_origin(origin)
        return [r for r in self.requests if not r.url.startswith((origin + "/", "data:", "blob:"))]

    def own_console_errors(self, origin):
        """Console errors but those about a third-party request that failed (no network here)."""
        blocked = {r.url for r in self.third_party(origin) if r.failed}
        return [e for e in self.console_errors if not any(e.endswith(" " + url) for url in blocked)]

    def summary(self):
        lines = ["%s -> %s: %d requests, %d bytes transferred" % (
            self.url, self.final_url, len(self.requests), self.transferred)]
        lines += ["  %r" % r for r in self.requests]
        lines += ["  console error: %s" % e for e in self.console_errors]
        return "\n".join(lines)


class Browser:
    """One headless Chromium process (a context manager) on a profile directory."""

    def __init__(self, profile=None, timeout=60, local_only=True):
        # local_only: no name resolves but loopback's, so that a page's
        # third-party requests (the login page asks api.github.com) fail the
        # same way on every machine, and none leaves this one
        self.local_only = local_only
        self.own_profile = profile is None
        self.profile = profile or tempfile.mkdtemp(prefix="omero-web-chromium-")
        self.timeout = timeout
        self.proc = None
        self.events = queue.Queue()
        self.replies = {}
        self.cond = threading.Condition()
        self.next_id = 0
        self.reader = None
        self.stderr = None

    # -- the process and the pipe -------------------------------------------
    def start(self):
        if not available():
            raise BrowserError("%s is not installed (apt-get install chromium)" % CHROMIUM)
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        cmd = [CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile, "--remote-debugging-pipe"]
        if self.local_only:
            cmd.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1")
        cmd.append("about:blank")
        self.stderr = tempfile.TemporaryFile()
        # the protocol's fds are 3 (commands) and 4 (answers): bash (dash takes no fd above 9) puts
        # the pipe's ends there and becomes chromium
        script = 'exec 3<&%d 4>&%d; exec "$@"' % (to_child_r, from_child_w)
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, "bash", *cmd],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.call("Browser.getVersion")
        return self

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self.from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                record, buffer = buffer.split(b"\0", 1)
                message = json.loads(record)
                if "id" in message:
                    with self.cond:
                        self.replies[message["id"]] = message
                        self.cond.notify_all()
                else:
                    self.events.put(message)
        with self.cond:
            self.replies[None] = {"error": {"message": "chromium closed the pipe"}}
            self.cond.notify_all()

    def call(self, method, session=None, **params):
        with self.cond:
            self.next_id += 1
            ident = self.next_id
        message = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while ident not in self.replies:
                if None in self.replies:
                    raise BrowserError("%s: chromium exited (%s)" % (method, self._stderr_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError("%s: no answer from chromium in %ss" % (method, self.timeout))
                self.cond.wait(left)
            reply = self.replies.pop(ident)
        if "error" in reply:
            raise BrowserError("%s: %s" % (method, reply["error"].get("message")))
        return reply.get("result", {})

    def _stderr_tail(self):
        if not self.stderr:
            return ""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-800:]

    def close(self):
        if self.proc is None:
            return
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        if self.stderr:
            self.stderr.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def remove_profile(self):
        if self.own_profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- one page -------------------------------------------------------------
    def visit(self, url, dom_expression=None, screenshot=False, settle=0.7, headers=None):
        """
        Load ``url`` in a new tab, wait until its load event fired and the
        network stayed quiet for ``settle`` seconds, and return a Visit.
        ``dom_expression``: JavaScript evaluated in the page, its value
        (JSON-serialisable) kept as ``visit.dom``. ``headers``: extra request
        headers (e.g. Host, to reach a named nginx server on 127.0.0.1).
        """
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            for domain in ("Network", "Page", "Runtime", "Log"):
                self.call(domain + ".enable", session)
            if headers:
                self.call("Network.setExtraHTTPHeaders", session, headers=headers)
            self._drain(session)
            result = Visit(url)
            self.call("Page.navigate", session, url=url)
            self._collect(session, result, settle)
            result.final_url = self.call(
                "Runtime.evaluate", session, expression="location.href", returnByValue=True
            )["result"].get("value", "")
            if dom_expression:
                value = self.call("Runtime.evaluate", session, expression=dom_expression,
                                  returnByValue=True, awaitPromise=True)
                if "exceptionDetails" in value:
                    raise BrowserError("the page's script failed: %s" % value["exceptionDetails"])
                result.dom = value["result"].get("value")
            if screenshot:
                data = self.call("Page.captureScreenshot", session, format="png")["data"]
                result.screenshot = base64.b64decode(data)
            return result
        finally:
            try:
                self.call("Target.closeTarget", targetId=target)
            except BrowserError:
                pass

    def _drain(self, session):
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def _collect(self, session, visit, settle):
        by_id = {}
        loaded = False
        quiet_since = None
        deadline = time.monotonic() + self.timeout
        while True:
            now = time.monotonic()
            if now > deadline:
                raise BrowserError("%s did not finish loading in %ss:\n%s"
                                   % (visit.url, self.timeout, visit.summary()))
            pending = [r for r in by_id.values() if not r.finished]
            if loaded and not pending:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.get("sessionId") != session:
                continue
            method, params = event["method"], event.get("params", {})
            if method == "Page.loadEventFired":
                loaded = True
            elif method == "Network.requestWillBeSent":
                rid = params["requestId"]
                previous = by_id.get(rid)
                if previous is not None and "redirectResponse" in params:
                    self._response(previous, params["redirectResponse"])
                    previous.encoded_bytes = params["redirectResponse"].get("encodedDataLength", 0)
                    previous.finished = True
                request = Request(params["request"]["url"], params["request"]["method"],
                                  params.get("type", ""))
                visit.requests.append(request)
                by_id[rid] = request
            elif method == "Network.requestServedFromCache":
                if params["requestId"] in by_id:
                    by_id[params["requestId"]].from_cache = True
            elif method == "Network.responseReceived":
                if params["requestId"] in by_id:
                    self._response(by_id[params["requestId"]], params["response"])
            elif method == "Network.loadingFinished":
                request = by_id.get(params["requestId"])
                if request is not None:
                    request.encoded_bytes = 0 if request.from_cache else int(
                        params.get("encodedDataLength", 0))
                    request.finished = True
            elif method == "Network.loadingFailed":
                request = by_id.get(params["requestId"])
                if request is not None:
                    request.failed = True
                    request.error = params.get("errorText", "")
                    request.finished = True
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text", "")
                visit.console_errors.append("uncaught exception: %s" % text)
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
                visit.console_errors.append("console.%s: %s" % (params["type"], " ".join(args)))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                visit.console_errors.append("%s: %s %s" % (
                    entry.get("source"), entry.get("text"), entry.get("url", "")))

    @staticmethod
    def _response(request, response):
        request.status = response.get("status")
        request.headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        if response.get("fromDiskCache") or response.get("fromPrefetchCache") \
                or response.get("fromServiceWorker"):
            request.from_cache = True
