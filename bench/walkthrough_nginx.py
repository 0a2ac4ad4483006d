"""The walkthrough's literal nginx, side by side with the formula's, on one kitchen host.

The walkthrough's step is ``omero web config nginx --http PORT --servername
NAME > /etc/nginx/conf.d/omeroweb.conf``: its output, as it is, served by
the same nginx (same workers, same gunicorn behind it) on another port, so
the benchmarks compare the two files and nothing else. Two edits only, so
that both files can be loaded at once: the upstream and the named locations
get a ``_walkthrough`` suffix (nginx refuses two upstreams of one name).

Used by bench/page_weight.py and bench/nginx_load.py. Needs a converged
kitchen host (``test/kitchen/kitchen converge --name NAME``, with
OMERO_WEB_PORT_OFFSET for its ports).
"""
import contextlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "kitchen"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test"))
import kitchen  # noqa: E402


def host_and_pillar(name):
    """The running kitchen host ``name`` and the pillar it was converged with."""
    host = kitchen.Host(name)
    pid = host.running_pid()
    if not pid:
        raise SystemExit("%s is not running: test/kitchen/kitchen converge --name %s" % (name, name))
    host.nspawn_pid = pid
    return host, kitchen.kitchen_pillar()["omero_web"]


def walkthrough_text(host, web, port):
    """``omero web config nginx`` as the walkthrough runs it, for ``port``."""
    cmd = ["runuser", "-u", web["user"], "--", "env", "OMERODIR=" + web["omerodir"],
           web["venv"] + "/bin/omero", "web", "config", "nginx", "--http", str(port),
           "--servername", web["nginx"]["server_name"]]
    text = host.run(cmd).stdout
    # both files in one nginx: the walkthrough's names get a suffix
    return re.sub(r"\b(omeroweb\w*|@maintenance\w*|@proxy_to_app\w*)", r"\1_walkthrough", text)


@contextlib.contextmanager
def served(host, web, port):
    """The walkthrough's file on ``port`` while the block runs; removed after."""
    path = "/etc/nginx/conf.d/zz-walkthrough-%d.conf" % port
    host.run(["bash", "-c", "cat > " + path], input=walkthrough_text(host, web, port))
    try:
        host.run(["nginx", "-t", "-q"])
        host.run(["systemctl", "reload", "nginx"])
        kitchen.wait_http("http://127.0.0.1:%d%s/webclient/login/" % (port, web.get("prefix") or ""),
                          timeout=30)
        yield path
    finally:
        host.run(["rm", "-f", path])
        host.run(["systemctl", "reload", "nginx"], check=False)
