"""[nas]: settings of the storage-node daemon."""
from archipelago.config import Option, Section, choice, integer, string, words

NAS = Section("nas", "Storage-node daemon", [
    Option("volumes", "engine", choice("memory", "engine"),
           "volume service: 'engine' (archipelago volumes + NBD exports) or 'memory' "
           "(in-memory twin for tests; volumes vanish at restart)"),
    Option("store", "file", choice("file", "rados"),
           "where engine volumes live: 'file' (state_dir/pools/POOL) or 'rados' (the "
           "RADOS pool of the [rados] section, one namespace per volume pool; docs/rados.md)"),
    Option("map_timeout", 30, integer(1, 3600),
           "seconds a compute node has to attach (or detach) before the NAS rolls back"),
    Option("node_timeout", 3, integer(2, 100),
           "a node is unavailable after this many missed heartbeats"),
    Option("sweep_interval", 1, integer(1, 60), "seconds between checks for timed-out work"),
    Option("nbd_listen", "0.0.0.0", string,
           "address the per-volume NBD servers listen on (volumes = engine)"),
    Option("nbd_host", "", string,
           "host name or address compute nodes use to reach this NAS (default: node name)"),
    Option("hosts", [], words,
           "NAME=ADDRESS pairs for compute nodes without DNS (an export allows only its "
           "node's addresses)"),
    Option("image_dirs", [], words,
           "absolute directories that image imports (storageimg source=) may read from, "
           "after symlinks are resolved; empty: any file nasd can read (a warning at "
           "start; set it on a production NAS)"),
])
