"""rocks list host storageimg NAS

The read-only images on NAS (needs the volume engine on the NAS)."""
from ....command import Command as Base
from ....command import host
from ....output import Output, size


class Command(Base):
    ARGS = [("nas", host)]

    def run(self, a, p):
        r = self.call(a["nas"], "list_images", p)
        return Output(["nas", "image", "pool", "size"],
                      [[a["nas"], i["image"], i["pool"], size(i["size"])]
                       for i in r["images"]], "no images")
