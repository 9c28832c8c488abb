"""Verify the roll ISO without mounting it (isoinfo + rpm -qp).

Checks: volume id; roll-<name>.xml at <roll>/<version>/<arch>/ with the right
name, version, release and arch; every RPM of the last build in RedHat/RPMS and
nothing else there; each RPM's name/version/release as version.mk says; the
kickstart RPM; nodes/ and graphs/default/ XML that parses.
usage: python3 roll/check_iso.py [ISO]
"""
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from roll import iso as I
from roll import packages as P


def isoinfo(iso, *args):
    return subprocess.run(["isoinfo", "-i", str(iso), *args], capture_output=True,
                          check=True).stdout


def check(iso, v):
    """(problems, RPM names on the ISO); no problems = good."""
    problems = []
    vol = [ln for ln in isoinfo(iso, "-d").decode().splitlines()
           if ln.startswith("Volume id:")]
    if not vol or vol[0].split(":", 1)[1].strip() != v["ROLLNAME"]:
        problems.append(f"volume id {vol} is not {v['ROLLNAME']}")
    files = {ln.strip() for ln in isoinfo(iso, "-R", "-f").decode().splitlines()}
    base = "/" + I.base(v)
    xml_path = f"{base}/roll-{v['ROLLNAME']}.xml"
    if xml_path not in files:
        return [*problems, f"{xml_path} missing"], []
    roll = ET.fromstring(isoinfo(iso, "-R", "-x", xml_path))
    info = roll.find("info")
    want = {"version": v["VERSION"], "release": v["RELEASE"], "arch": I.ARCH}
    if roll.get("name") != v["ROLLNAME"] or info is None or \
            any(info.get(k) != val for k, val in want.items()):
        problems.append(f"roll xml says {roll.get('name')} {info.attrib if info else None}")
    rpmdir = f"{base}/RedHat/RPMS/"
    on_iso = sorted(f for f in files if f.startswith(rpmdir) and f.endswith(".rpm"))
    manifest = json.loads((P.BUILD / "rpm" / "manifest.json").read_text())
    names = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in on_iso:
            local = Path(tmp) / Path(f).name
            local.write_bytes(isoinfo(iso, "-R", "-x", f))
            q = subprocess.run(["rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE}",
                                str(local)], capture_output=True, text=True)
            if q.returncode:
                problems.append(f"{f}: not an RPM: {q.stderr.strip()}")
                continue
            name, ver, rel = q.stdout.split()
            names[name] = f
            if (ver, rel) != (v["VERSION"], v["RELEASE"]):
                problems.append(f"{f}: version {ver}-{rel}, version.mk says "
                                f"{v['VERSION']}-{v['RELEASE']}")
    for name in sorted(set(manifest) - set(names)):
        problems.append(f"RPM {name} was built but is not on the ISO")
    for name in sorted(set(names) - set(manifest)):
        problems.append(f"RPM {name} on the ISO is not from this build")
    if f"roll-{v['ROLLNAME']}-kickstart" not in names:
        problems.append("the kickstart RPM is missing")
    for sub in ("nodes", "graphs/default"):
        xmls = [f for f in files if f.startswith(f"{base}/{sub}/") and f.endswith(".xml")]
        if not xmls:
            problems.append(f"no {sub}/*.xml")
        for f in xmls:
            try:
                ET.fromstring(isoinfo(iso, "-R", "-x", f))
            except ET.ParseError as e:
                problems.append(f"{f}: {e}")
    return problems, sorted(names)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    v = P.read_version()
    iso = Path(argv[0]) if argv else I.iso_path(v)
    if not iso.exists():
        sys.stderr.write(f"roll-check: {iso} does not exist: run `make roll`\n")
        return 1
    problems, names = check(iso, v)
    for p in problems:
        sys.stderr.write(f"roll-check: {p}\n")
    if problems:
        return 1
    print(f"roll-check: {iso.name}: {len(names)} RPMs, roll xml, nodes and graphs OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
