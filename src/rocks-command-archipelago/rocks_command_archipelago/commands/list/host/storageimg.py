"""rocks list host storageimg NAS [pool=POOL]

The read-only images on NAS: size, bytes their objects take (stored; shared blocks
count in every image), bytes their import added to the store (added), format,
import state and progress, age, source file."""
from ....command import Command as Base
from ....command import host, pool
from ....output import Output, age, size


def _progress(i):
    if i["state"] != "importing":
        return None
    return f"{100 * i['done'] // max(i['size'], 1)}%"


class Command(Base):
    ARGS = [("nas", host)]
    PARAMS = {"pool": (None, pool)}

    def run(self, a, p):
        r = self.call(a["nas"], "list_images", p, pool=p["pool"])
        return Output(["nas", "image", "pool", "size", "stored", "added", "format", "state",
                       "progress", "created", "source", "error"],
                      [[a["nas"], i["image"], i["pool"], size(i["size"]), size(i["stored"]),
                        size(i["added"]), i["format"], i["state"], _progress(i),
                        age(i["created"]), i["source"], i["error"]]
                       for i in r["images"]], "no images")
