#!/usr/bin/env python3
"""
systemd-analyze security of OMERO.web's units on a kitchen host: the
formula's hardened omero-web and clearsessions units, beside the
walkthrough's own unit (plus Restart/UMask, as the formula had it before).

    python3 bench/unit_security.py [--name HOST]   # default: converge a kitchen host

Prints one line per unit: its exposure (0 = fully sandboxed .. 10 = not at
all) and systemd's verdict. Run as root on the project's machine kind.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "test", "kitchen"))
import kitchen  # noqa: E402

#: The walkthrough's omero-web-systemd.service, with the Restart/UMask the
#: formula added before it was hardened: what "today" measured.
WALKTHROUGH_UNIT = """\
[Unit]
Description=OMERO.web
Requires=nginx.service
After=network.target nginx.service

[Service]
User=omero-web
Type=forking
PIDFile=/opt/omero/web/omero-web/var/django.pid
Restart=on-failure
UMask=0027
Environment="PATH=/opt/omero/web/venv3/bin:/usr/local/bin:/usr/bin:/bin"
Environment="OMERODIR=/opt/omero/web/omero-web"
ExecStart=/opt/omero/web/venv3/bin/omero web start
ExecStop=/opt/omero/web/venv3/bin/omero web stop

[Install]
WantedBy=multi-user.target
"""


def exposure(host, unit, offline_file=None):
    argv = ["systemd-analyze", "security", "--no-pager"]
    argv += ["--offline=yes", offline_file] if offline_file else [unit]
    out = host.run(argv, check=False).stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", out)
    return (float(match.group(1)), match.group(2)) if match else (None, out[-300:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--name", default="omero-web-bench-security",
                        help="kitchen host (reused when it runs, else built and converged)")
    parser.add_argument("--keep", action="store_true", help="leave the host running")
    args = parser.parse_args()
    host = kitchen.Host(args.name)
    built = not host.running_pid()
    if built:
        host.create(fresh=True)
        host.boot()
        host.write_pillar(host.kitchen_pillar())
        result = host.apply()
        if not result.ok:
            print(result.summary())
            return 1
    host.nspawn_pid = host.running_pid()
    host.run(["bash", "-c", "cat > /root/walkthrough-omero-web.service"], input=WALKTHROUGH_UNIT)
    rows = [
        ("walkthrough's unit (+Restart, UMask)", exposure(host, None, "/root/walkthrough-omero-web.service")),
        ("formula: omero-web.service", exposure(host, "omero-web.service")),
        ("formula: omero-web-clearsessions.service", exposure(host, "omero-web-clearsessions.service")),
        ("Debian's redis-server.service", exposure(host, "redis-server.service")),
    ]
    for what, (score, verdict) in rows:
        print("{:45s} {:>5} {}".format(what, "-" if score is None else "%.1f" % score, verdict))
    if built and not args.keep:
        host.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
