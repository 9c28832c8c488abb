"""Rocks node and graph XML: valid, wired to the appliances, naming only packages
the roll builds (or the distribution has), no host names, no polling loops."""
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from roll import iso, packages  # noqa: E402

NODES = sorted((ROOT / "nodes").glob("*.xml"))
GRAPHS = sorted((ROOT / "graphs" / "default").glob("*.xml"))
# Graph nodes that Rocks itself provides.
ROCKS_NODES = {"server", "client", "database-data"}


def post_text(tree):
    return "\n".join("".join(p.itertext()) for p in tree.iter("post"))


def test_expected_files_exist():
    assert {p.name for p in NODES} >= {"archipelago.xml", "archipelago-base.xml",
                                       "archipelago-nas.xml", "archipelago-vm.xml"}
    assert [p.name for p in GRAPHS] == ["archipelago.xml"]


@pytest.mark.parametrize("path", NODES + GRAPHS, ids=lambda p: p.name)
def test_parses_and_has_a_description(path):
    tree = ET.parse(path)
    assert tree.getroot().tag in ("kickstart", "graph")
    assert "".join(tree.getroot().find("description").itertext()).strip()


@pytest.mark.parametrize("path", NODES, ids=lambda p: p.name)
def test_packages_are_built_by_the_roll_or_from_the_distro(path):
    catalog = packages.all_rpm_names()
    for pkg in ET.parse(path).iter("package"):
        name = pkg.text.strip()
        assert name in catalog or name in packages.DISTRO, f"{path.name}: {name}"


@pytest.mark.parametrize("path", NODES + GRAPHS, ids=lambda p: p.name)
def test_no_host_names_and_no_polling(path):
    text = path.read_text()
    assert not re.search(r"\b(compute|nas|vm-container|frontend)-\d+-\d+\b", text)
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", text), "an IP address"
    assert not re.search(r"\.local\b", text)
    post = post_text(ET.parse(path)) if path.parent.name == "nodes" else ""
    assert not re.search(r"\b(while|until|sleep)\b", post), "a polling loop"


def test_graph_wires_the_appliances():
    graph = ET.parse(GRAPHS[0]).getroot()
    node_names = {p.stem for p in NODES}
    edges = {}
    for e in graph.iter("edge"):
        for to in e.iter("to"):
            assert to.text in node_names, to.text
            edges.setdefault((e.get("from"), e.get("cond")), set()).add(to.text)
        assert e.get("from") in ROCKS_NODES | node_names
    assert edges[("server", None)] == {"archipelago", "archipelago-base"}
    assert "archipelago-base" in edges[("client", None)]
    assert edges[("client", "archipelago_nas")] == {"archipelago-nas"}
    assert edges[("client", "archipelago_vm")] == {"archipelago-vm"}
    for o in graph.iter("order"):
        names = [o.get("head")] + [t.text for t in o.iter("tail")]
        assert set(names) <= ROCKS_NODES | node_names


def test_frontend_sets_the_graph_attributes_and_secrets():
    post = post_text(ET.parse(ROOT / "nodes/archipelago.xml"))
    for attr in ("archipelago_nas", "archipelago_vm", "img_sync", "archipelago_pool"):
        assert re.search(rf"rocks set (appliance )?attr .*\b{attr}\b", post), attr
    assert "chmod 0400 \"$f\"" in post and "/dev/urandom" in post
    assert "systemctl enable archipelago-frontend-setup.service" in post


@pytest.mark.parametrize("node, role", [("archipelago-nas", "nas"), ("archipelago-vm", "compute")])
def test_config_written_by_rocks_report_per_appliance(node, role):
    tree = ET.parse(ROOT / f"nodes/{node}.xml")
    evals = ["".join(e.itertext()) for e in tree.iter("eval")]
    assert any("rocks report host archipelago" in e and f"role={role}" in e for e in evals)
    assert any(v.get("name") == "Node_Hostname" for v in tree.iter("var"))


def test_frontend_config_names_the_broker_by_the_frontends_private_name():
    tree = ET.parse(ROOT / "nodes/archipelago.xml")
    files = [f for f in tree.iter("file") if f.get("name") == "/etc/archipelago/archipelago.conf"]
    assert len(files) == 1
    text = ET.tostring(files[0], encoding="unicode")
    assert re.search(r"url = amqp://archipelago@<var name=\"Kickstart_PrivateHostname\" />"
                     r":5672/archipelago", text)
    assert "password_file = /etc/archipelago/rabbitmq.secret" in text


def test_every_catalog_package_has_a_spec():
    for pkg in packages.CATALOG:
        assert (ROOT / "roll/specs" / pkg.spec).exists(), pkg.spec


def test_roll_xml_template():
    import time
    v = packages.read_version()
    roll = ET.fromstring(iso.roll_xml(v, time.gmtime(0)))
    assert roll.get("name") == v["ROLLNAME"]
    assert roll.find("info").get("version") == v["VERSION"]
    assert roll.find("info").get("release") == v["RELEASE"]
    assert iso.base(v) == f"{v['ROLLNAME']}/{v['VERSION']}/{iso.ARCH}"


def test_unknown_src_package_still_gets_an_rpm(tmp_path):
    (tmp_path / "src/newthing").mkdir(parents=True)
    (tmp_path / "src/newthing/setup.py").write_text("")
    (tmp_path / "src/archipelago").mkdir()
    (tmp_path / "src/archipelago/setup.py").write_text("")
    plan = packages.plan(tmp_path)
    names = packages.built_rpms(plan)
    assert "newthing" in names and "python3-archipelago" in names
    assert "archipelago-nas" not in names  # src/archipelago-nas absent: not planned
    arch = next(p for p in plan if p.src == "archipelago")
    # python3-xseg is not built here, so the Requires on it is dropped.
    reqs = packages.requires_for(arch, "python3-archipelago", plan)
    assert "python3-click" in reqs and not any(r.startswith("python3-xseg") for r in reqs)
