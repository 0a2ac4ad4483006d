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
"$PYTHON" -m pip install --quiet wheel setuptools >&2
jobs=$(nproc)
echo ">> compiling IcePy with $jobs jobs (about $((8 / jobs + 1)) minutes); progress every 100 files" >&2
cd "$src"
# build_ext -j compiles in parallel; bdist_wheel then reuses the objects.
"$PYTHON" setup.py -q build_ext -j "$jobs" 2>&1 | awk '/^(gcc|g\+\+|x86_64-linux-gnu-g)/{n++; if (n%100==0) {print ">> compiled " n " files" > "/dev/stderr"}} /error/{print > "/dev/stderr"}'
"$PYTHON" setup.py -q bdist_wheel -d "$OUTDIR" >/dev/null 2>&1
ls "$OUTDIR"/zeroc_ice-3.6.5-"$tag"-*.whl | head -n1
