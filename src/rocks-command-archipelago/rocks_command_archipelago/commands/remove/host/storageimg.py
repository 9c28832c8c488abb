"""rocks remove host storageimg NAS POOL NAME

Remove image NAME from POOL on NAS. Volumes cloned from it stay intact (they keep
sharing its blocks; GC frees them once nothing references them). A NAME that is a
volume is deleted as a volume (it must be unmapped). Space returns through the GC."""
from ....command import Command as Base
from ....command import host, pool, volume


class Command(Base):
    ARGS = [("nas", host), ("pool", pool), ("volume", volume)]

    def run(self, a, p):
        r = self.call(a["nas"], "remove_image", p, pool=a["pool"], image=a["volume"])
        if r.get("image") is None:
            return f"removed {r['volume']} from pool {r['pool']}"
        kept = f" (clones kept: {', '.join(r['clones'])})" if r["clones"] else ""
        return f"removed image {r['image']} from pool {r['pool']}{kept}"
