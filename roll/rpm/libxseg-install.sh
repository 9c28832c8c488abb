#!/bin/sh
# Install libxseg's C parts from the current (built: `make all`) source dir into
# BUILDROOT: the shared and static libraries into LIBDIR, headers into
# /usr/include. The Makefile builds into ./build; test and bench programs are
# not installed.
# usage: libxseg-install.sh BUILDROOT LIBDIR
set -eu
root=$1 libdir=$2
mkdir -p "$root$libdir" "$root/usr/include"
find . \( -path ./tests -o -path ./bench -o -path './build/lib.*' -o -path './build/temp.*' \) \
    -prune -o \( -name 'libxseg*.so*' -o -name 'libxseg*.a' \) -print | while read -r f; do
    cp -P "$f" "$root$libdir/"
done
if [ -d include ]; then
    cp -R include/. "$root/usr/include/"
fi
