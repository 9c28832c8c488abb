"""rocks report host archipelago HOST [role=compute|nas] [attacher=uri|kernel]

Print the /etc/archipelago/archipelago.conf of HOST as a Rocks <file> block (the
kickstart writes it). The broker password is never printed: it goes to the
password_file at install time. A NAS imports images only from IMAGE_DIR."""
from urllib.parse import urlsplit, urlunsplit

from archipelago.bus.config import RABBITMQ
from archipelago.config import choice

from ....command import Command as Base
from ....command import host

IMAGE_DIR = "/export/archipelago/images"     # [nas] image_dirs of an installed NAS


class Command(Base):
    ARGS = [("host", host)]
    PARAMS = {"role": ("compute", choice("compute", "nas", "frontend", "all")),
              "attacher": ("kernel", choice("uri", "kernel"))}

    def run(self, a, p):
        url = urlsplit(self.client.cfg.section(RABBITMQ).url)
        netloc = url.netloc.rpartition("@")
        user = (netloc[0].split(":")[0] + "@") if netloc[1] else ""
        safe = urlunsplit(url._replace(netloc=user + netloc[2]))
        lines = ['<file name="/etc/archipelago/archipelago.conf" perms="0644">',
                 "[node]", f"name = {a['host']}", f"role = {p['role']}", "",
                 "[rabbitmq]", f"url = {safe}",
                 "password_file = /etc/archipelago/rabbitmq.secret", ""]
        if p["role"] in ("nas", "all"):
            lines += ["[nas]", "volumes = engine", f"image_dirs = {IMAGE_DIR}", ""]
        if p["role"] in ("compute", "all"):
            lines += ["[vm]", f"attacher = {p['attacher']}", ""]
        lines.append("</file>")
        return "\n".join(lines)
