#!/usr/bin/env bash
# Build the zeroc-ice 3.6.5 (IcePy) wheel from the PyPI source archive.
#
# Why: OMERO's prebuilt IcePy wheels live on GitHub release pages, which are
# not reachable from this project's machines; PyPI only has the sdist, which
# is from 2017 and does not compile on today's Pythons as shipped.
#
# The fixes, each applied only when the python (or compiler) doing the build
# needs it, so that a cp311 build gets exactly the first two:
#
#   Python >= 3.11  src/Slice.cpp includes <eval.h>, removed in 3.11; nothing
#                   from it is used: drop the include.
#   Python >= 3.11  src/Util.cpp reads PyThreadState->frame, which 3.11 made
#                   opaque: PyThreadState_GetFrame(tstate) returns the same frame.
#   Python >= 3.12  lib/Ice.py imports `imp` (removed in 3.12) for a single
#                   imp.new_module(name): types.ModuleType(name) is the same.
#   Python >= 3.13  PyEval_CallObject is gone (src/Types.cpp, src/Util.cpp):
#                   PyObject_CallObject takes the same arguments.
#   Python >= 3.13  PyObject_AsReadBuffer is gone (src/Types.cpp, twice): a
#                   helper does what it did, through the buffer protocol
#                   (PyObject_GetBuffer with PyBUF_SIMPLE, then PyBuffer_Release:
#                   same pointer and length, same exception on failure).
#   gcc >= 14       implicit function declarations are errors, and
#                   src/ice/mcpp/system.c calls readlink() undeclared: mcpp's
#                   configed.H (included by system.H) sets _POSIX_C_SOURCE 1
#                   before the first system header, and glibc's <unistd.h>
#                   declares readlink() only from POSIX.1-2001 on. Include
#                   <unistd.h> first, before system.H, with glibc's default
#                   features (after system.H it would not help).
#
# Each fix checks that it found what it replaces, so a different sdist fails
# loudly instead of building something half-patched.
#
# Usage: build-icepy-wheel.sh [PYTHON] [OUTDIR]
# Needs: PYTHON with venv and its development headers, g++, and the OpenSSL and
# bzip2 headers (libssl-dev, libbz2-dev) IcePy links against (the kitchen runs it
# inside a throwaway copy of the Debian root whose python the wheel is for).
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

python_at_least() {  # python_at_least 3 13
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (int(sys.argv[1]), int(sys.argv[2])) else 1)' "$1" "$2"
}
gcc_major=$(${CC:-gcc} -dumpversion | cut -d. -f1)

# replace FILE SED-EXPRESSION WHAT: apply the edit, fail if it changed nothing.
replace() {
    local file=$1 expr=$2 what=$3
    cp "$file" "$file.orig"
    sed -i "$expr" "$file"
    if cmp -s "$file" "$file.orig"; then
        echo "build-icepy-wheel: patch '$what' found nothing to change in $file" >&2
        exit 1
    fi
    rm "$file.orig"
    echo ">>   $what ($file)" >&2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Build tools go in a throwaway venv, not into the caller's python (which may
# have no pip at all, as Debian's python3 without python3-pip).
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet wheel setuptools >&2
echo ">> downloading zeroc-ice 3.6.5 sdist from PyPI" >&2
"$work/venv/bin/pip" download --quiet --no-deps --no-binary :all: -d "$work" "zeroc-ice==3.6.5" >&2
tar -xzf "$work"/zeroc-ice-3.6.5.tar.gz -C "$work"
src="$work/zeroc-ice-3.6.5"
cd "$src"

echo ">> patching for $tag, gcc $gcc_major" >&2
if python_at_least 3 11; then
    replace src/Slice.cpp 's|^#include <eval.h>|// <eval.h> was removed in Python 3.11|' \
        "Python 3.11: no <eval.h>"
    replace src/Util.cpp 's|PyThreadState_GET()->frame|PyThreadState_GetFrame(PyThreadState_GET())|g; s|tstate->frame|PyThreadState_GetFrame(tstate)|g' \
        "Python 3.11: PyThreadState_GetFrame"
    if grep -n -- '->frame' src/Util.cpp >&2; then
        echo "build-icepy-wheel: unpatched ->frame left in src/Util.cpp" >&2
        exit 1
    fi
fi
if python_at_least 3 12; then
    replace lib/Ice.py 's|^import sys, string, imp, os,|import sys, string, types, os,|; s|imp\.new_module(|types.ModuleType(|g' \
        "Python 3.12: types.ModuleType instead of imp"
fi
if python_at_least 3 13; then
    replace src/Types.cpp 's|PyEval_CallObject(|PyObject_CallObject(|g' "Python 3.13: PyObject_CallObject"
    replace src/Util.cpp 's|PyEval_CallObject(|PyObject_CallObject(|g' "Python 3.13: PyObject_CallObject"
    # The helper goes after the file's `using namespace` lines, before its first use.
    cat > "$work/as_read_buffer.cpp" <<'CPP'

//
// Python 3.13 removed PyObject_AsReadBuffer. This is what it did: get a
// simple buffer, keep its pointer and length, release the view.
//
static int
asReadBuffer(PyObject* obj, const void** buf, Py_ssize_t* len)
{
    Py_buffer view;
    if(PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0)
    {
        return -1;
    }
    *buf = view.buf;
    *len = view.len;
    PyBuffer_Release(&view);
    return 0;
}
CPP
    replace src/Types.cpp "/^using namespace IceUtilInternal;/r $work/as_read_buffer.cpp" \
        "Python 3.13: asReadBuffer helper"
    replace src/Types.cpp 's|PyObject_AsReadBuffer(p, |asReadBuffer(p, |g' \
        "Python 3.13: buffer protocol instead of PyObject_AsReadBuffer"
    if grep -n 'PyObject_AsReadBuffer(\|PyEval_CallObject(' src/*.cpp >&2; then
        echo "build-icepy-wheel: calls removed in Python 3.13 left in src/" >&2
        exit 1
    fi
fi
if [ "$gcc_major" -ge 14 ]; then
    replace src/ice/mcpp/system.c 's|^#include    "system.H"|#include    <unistd.h>      /* first, for readlink(): see build-icepy-wheel.sh */\n&|' \
        "gcc 14: <unistd.h> first in mcpp's system.c"
fi

PYTHON="$work/venv/bin/python"
jobs=$(nproc)
total=$(find "$src/src" -name '*.cpp' | wc -l)
echo ">> compiling $total C++ files with $jobs parallel jobs (about $((9 / jobs)) minutes)" >&2
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
