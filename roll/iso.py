"""The roll ISO's layout, shared by the builder and the checker.

As Rocks expects (rocks add roll / rocks create roll):

    <roll>/<version>/<arch>/roll-<roll>.xml          the roll's description
    <roll>/<version>/<arch>/RedHat/RPMS/*.rpm        every RPM of the roll
    <roll>/<version>/<arch>/nodes/*.xml              (also packaged in
    <roll>/<version>/<arch>/graphs/default/*.xml      roll-<roll>-kickstart)

named <roll>-<version>-<release>.<arch>.disk1.iso, volume id = <roll>.
"""
import platform

from roll import packages as P

ARCH = platform.machine() or "x86_64"


def base(v):
    return f"{v['ROLLNAME']}/{v['VERSION']}/{ARCH}"


def iso_path(v):
    return P.BUILD / f"{v['ROLLNAME']}-{v['VERSION']}-{v['RELEASE']}.{ARCH}.disk1.iso"


def roll_xml(v, when):
    """roll-<name>.xml; `when` is a time.struct_time for the timestamp."""
    import time
    color = v.get("COLOR", "white")
    return (f'<roll name="{v["ROLLNAME"]}" interface="6.0.2">\n'
            f'\t<timestamp time="{time.strftime("%H:%M:%S", when)}" '
            f'date="{time.strftime("%b %d %Y", when)}" tz="UTC"/>\n'
            f'\t<color edge="{color}" node="{color}"/>\n'
            f'\t<info version="{v["VERSION"]}" release="{v["RELEASE"]}" arch="{ARCH}" '
            f'os="linux"/>\n'
            '\t<iso maxsize="0" addcomps="0" bootable="0" mkisofs=""/>\n'
            '\t<rpm rolls="0" bin="1" src="0"/>\n'
            '</roll>\n')
