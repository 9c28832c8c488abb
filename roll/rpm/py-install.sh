#!/bin/sh
# Install the Python package in the current directory (an unpacked src/* tarball)
# into BUILDROOT with its modules under SITELIB and scripts in /usr/bin, the way
# the target (RHEL-style) python3 lays them out.
# usage: py-install.sh BUILDROOT SITELIB     (PYTHON overrides the build python)
set -eu
root=$1 lib=$2
py=${PYTHON:-/usr/bin/python3}
"$py" setup.py -q build --executable=/usr/bin/python3 \
    install -O0 --root="$root" --prefix=/usr --install-lib="$lib" \
    --install-scripts=/usr/bin --install-data=/usr --single-version-externally-managed \
    >build.log 2>&1 || { cat build.log >&2; exit 1; }
# Entry-point scripts must run the target's python, whatever built them.
if [ -d "$root/usr/bin" ]; then
    for f in "$root"/usr/bin/*; do
        [ -f "$f" ] && sed -i '1s|^#!.*python[0-9.]*$|#!/usr/bin/python3|' "$f"
    done
fi
find "$root" -name __pycache__ -prune -exec rm -rf {} +
