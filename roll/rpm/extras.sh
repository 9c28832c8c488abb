#!/bin/sh
# Per-package additions to an RPM's BUILDROOT beyond the Python install: service
# units, SysV init scripts, the Ganeti provider directory, module-load config.
# Runs in the unpacked source dir.   usage: extras.sh SRC BUILDROOT ROLL_DIR
set -eu
src=$1 root=$2 roll=$3
units=$root/usr/lib/systemd/system
initd=$root/etc/rc.d/init.d

# Units a package ships itself (src/archipelago-nas, -vm, ...) go in its RPM.
ship_units() {
    found=$(find . \( -path ./build -o -name '*.egg-info' \) -prune -o \
        \( -name '*.service' -o -name '*.socket' -o -name '*.timer' \) -type f -print)
    for f in $found; do
        install -D -m 0644 "$f" "$units/$(basename "$f")"
    done
}

case $src in
archipelago)
    install -D -m 0644 "$roll/systemd/archipelago.service" "$units/archipelago.service"
    install -D -m 0755 "$roll/init.d/archipelago" "$initd/archipelago"
    install -d -m 0755 "$root/etc/archipelago" "$root/var/lib/archipelago" \
        "$root/var/log/archipelago"
    ;;
archipelago-nas)
    ship_units
    install -D -m 0755 "$roll/init.d/archipelago-nas" "$initd/archipelago-nas"
    ;;
archipelago-vm)
    ship_units
    install -D -m 0755 "$roll/init.d/archipelago-vm" "$initd/archipelago-vm"
    ;;
kernel)
    # nbd is a module: load it at boot so `vlmc map` finds /dev/nbd*.
    install -d "$root/usr/lib/modules-load.d"
    echo nbd > "$root/usr/lib/modules-load.d/archipelago.conf"
    ;;
archipelago-ganeti)
    PYTHONPATH="$root$(ls -d "$root"/usr/lib/python3*/site-packages | sed "s|^$root||")" \
        "${PYTHON:-/usr/bin/python3}" -m archipelago_ganeti.provider \
        "$root/usr/share/ganeti/extstorage/archipelago" --python /usr/bin/python3 \
        --vlmc /usr/bin/vlmc
    ;;
*)
    ship_units
    ;;
esac
