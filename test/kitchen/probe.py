"""A bounded availability probe: a thread GETs one loopback URL again and
again while something else happens (an apply, a restart, a rolling change),
and says which requests failed and for how long the URL was unavailable.

Bounded in count (``max_requests``) and time (``max_seconds``): it stops by
itself. Loopback only: the URL must be http://127.0.0.1:... . Used by the
real-host tests, the master tests and bench/availability.py.
"""
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class Probe:
    """``with Probe(url) as probe: <change>``; then ``probe.failed``, ``probe.window``."""

    def __init__(self, url, max_requests=400, max_seconds=120.0, interval=0.05, timeout=5.0,
                 expect=200, host_header=None):
        if urlsplit(url).hostname != "127.0.0.1":
            raise ValueError("the probe targets 127.0.0.1 only, not %s" % url)
        self.url = url
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.interval = interval
        self.timeout = timeout
        self.expect = expect
        self.headers = {"Host": host_header} if host_header else {}
        #: (start, end, outcome): outcome is the HTTP status, or the error's text
        self.requests = []
        self.started = self.stopped = None
        self.bound_reached = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)

    # -- running -------------------------------------------------------------
    def _one(self):
        start = time.time()
        req = urllib.request.Request(self.url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
                outcome = resp.status
        except urllib.error.HTTPError as err:
            outcome = err.code
        except Exception as err:  # noqa: BLE001 - any failure is an outcome to count
            outcome = "%s: %s" % (type(err).__name__, err)
        self.requests.append((start, time.time(), outcome))

    def _loop(self):
        deadline = self.started + self.max_seconds
        while (not self._stop.is_set() and len(self.requests) < self.max_requests
               and time.time() < deadline):
            self._one()
            self._stop.wait(self.interval)
        self.stopped = time.time()
        self.bound_reached = not self._stop.is_set()

    def _wait_for_request_after(self, moment):
        """Until a request started at or after ``moment`` has ended (or the probe stopped)."""
        deadline = time.time() + self.timeout + self.interval + 5
        while (time.time() < deadline and self._thread.is_alive()
               and not (self.requests and self.requests[-1][0] >= moment)):
            time.sleep(0.01)

    def start(self):
        """Start, and return once the first request has ended: the probe runs
        from before whatever follows."""
        self.started = time.time()
        self._thread.start()
        self._wait_for_request_after(self.started)
        return self

    def stop(self):
        """Stop after one more request: the probe runs until after what preceded."""
        self._wait_for_request_after(time.time())
        self._stop.set()
        self._thread.join(self.timeout + self.interval + 5)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- results -------------------------------------------------------------
    @property
    def failed(self):
        return [r for r in self.requests if r[2] != self.expect]

    def covered(self, start, end):
        """Whether a request ended before ``start`` and one started after ``end``."""
        return bool(self.requests) and self.requests[0][1] <= start and self.requests[-1][0] >= end

    @property
    def window(self):
        """Seconds the URL was unavailable: from the start of the first failed
        request to the end of the last one (0.0 when none failed)."""
        failed = self.failed
        return failed[-1][1] - failed[0][0] if failed else 0.0

    def summary(self):
        outcomes = {}
        for _, _, outcome in self.failed:
            outcomes[str(outcome)[:80]] = outcomes.get(str(outcome)[:80], 0) + 1
        return "%d requests, %d failed over %.2f s%s" % (
            len(self.requests), len(self.failed), self.window,
            (" (" + ", ".join("%s x%d" % kv for kv in sorted(outcomes.items())) + ")") if outcomes else "")
