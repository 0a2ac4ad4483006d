#!/usr/bin/env bash
# Build the zeroc-ice 3.6.5 (IcePy) wheel from the PyPI source archive.
#
# Why: OMERO's prebuilt IcePy wheels live on GitHub release pages, which are
# not reachable from this project's machines; PyPI only has the sdist, which
# needs two one-line fixes to compile on Python >= 3.11 (src/Slice.cpp
# includes <eval.h>, gone since 3.11; src/Util.cpp reads
# PyThreadState->frame, replaced by PyThreadState_GetFrame).
#
# Usage: build-icepy-wheel.sh [PYTHON] [OUTDIR]
# Prints the wheel's path on the last line. Reuses an existing wheel in OUTDIR.
set -euo pipefail
PYTHON=${1:-python3}
OUTDIR=${2:-/var/cache/omero-web-formula/wheels}
mkdir -p "$OUTDIR"
tag=$("$PYTHON" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
existing=$(ls "$OUTDIR"/zeroc_ice-3.6.5-"$tag"-*.whl 2>/dev/null | head -n1 || true)
if [ -n "$existing" ]; then
    echo "$existing"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo ">> downloading zeroc-ice 3.6.5 sdist from PyPI" >&2
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$work" "zeroc-ice==3.6.5" >&2
tar -xzf "$work"/zeroc-ice-3.6.5.tar.gz -C "$work"
src="$work/zeroc-ice-3.6.5"
echo ">> patching for Python >= 3.11" >&2
sed -i 's|^#include <eval.h>|// <eval.h> was removed in Python 3.11|' "$src/src/Slice.cpp"
sed -i 's|PyThreadState_GET()->frame|PyThreadState_GetFrame(PyThreadState_GET())|g; s|tstate->frame|PyThreadState_GetFrame(tstate)|g' "$src/src/Util.cpp"
grep -n 'frame' "$src/src/Util.cpp" | grep -v GetFrame | grep -- '->frame' >&2 && { echo "unpatched ->frame left in Util.cpp" >&2; exit 1; } || true
# Build tools go in a throwaway venv, not into the caller's python.
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet wheel setuptools >&2
PYTHON="$work/venv/bin/python"
jobs=$(nproc)
total=$(find "$src/src" -name '*.cpp' | wc -l)
echo ">> compiling $total C++ files with $jobs parallel jobs (about $((9 / jobs)) minutes)" >&2
cd "$src"
# setuptools compiles one extension's sources serially; IcePy is a single
# extension of ~$total files, so compile them on a thread pool instead, and
# report progress as we go.
"$PYTHON" - "$OUTDIR" "$jobs" "$total" >&2 <<'PY'
import runpy, sys, threading
from multiprocessing.pool import ThreadPool
import setuptools  # noqa: F401  (installs setuptools' distutils)
import distutils.ccompiler as ccompiler

outdir, jobs, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
done = [0]
lock = threading.Lock()

def parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None,
                     debug=0, extra_preargs=None, extra_postargs=None, depends=None):
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        if obj not in build:
            return
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)
        with lock:
            done[0] += 1
            if done[0] % 50 == 0:
                print(">> compiled %d of about %d files" % (done[0], total), flush=True)

    with ThreadPool(jobs) as pool:
        list(pool.imap_unordered(one, objects))
    return objects

ccompiler.CCompiler.compile = parallel_compile
sys.argv = ["setup.py", "-q", "bdist_wheel", "-d", outdir]
runpy.run_path("setup.py", run_name="__main__")
PY
ls "$OUTDIR"/zeroc_ice-3.6.5-"$tag"-*.whl | head -n1
