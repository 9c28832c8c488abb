"""rocks set host storageattr NAS ATTR VALUE

Set a NAS global attribute; VALUE "none" deletes it."""
from ....command import Command as Base
from ....command import host


class Command(Base):
    ARGS = [("nas", host), ("attr", None), ("value", None)]

    def run(self, a, p):
        if a["value"].lower() == "none":
            self.call(a["nas"], "del_attrs", p, attrs=[a["attr"]])
            return f"{a['nas']}: {a['attr']} removed"
        self.call(a["nas"], "set_attrs", p, attrs={a["attr"]: a["value"]})
        return f"{a['nas']}: {a['attr']} = {a['value']}"
