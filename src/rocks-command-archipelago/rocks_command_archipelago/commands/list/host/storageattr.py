"""rocks list host storageattr NAS [ATTR]

The NAS's global attributes (or one of them)."""
from ....command import Command as Base
from ....command import host
from ....output import Output


class Command(Base):
    ARGS = [("nas", host)]
    OPTARGS = [("attr", None)]

    def run(self, a, p):
        attrs = self.call(a["nas"], "get_attrs", p)["attrs"]
        rows = [[a["nas"], k, v] for k, v in sorted(attrs.items())
                if a["attr"] in (None, k)]
        return Output(["nas", "attr", "value"], rows, "no attributes")
