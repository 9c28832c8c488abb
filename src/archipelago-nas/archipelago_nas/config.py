"""[nas]: settings of the storage-node daemon."""
from archipelago.config import Option, Section, choice, integer

NAS = Section("nas", "Storage-node daemon", [
    Option("volumes", "memory", choice("memory", "engine"),
           "volume service: 'engine' (volumes + NBD server) or 'memory' (tests, demo)"),
    Option("map_timeout", 30, integer(1, 3600),
           "seconds a compute node has to attach (or detach) before the NAS rolls back"),
    Option("node_timeout", 3, integer(2, 100),
           "a node is unavailable after this many missed heartbeats"),
    Option("sweep_interval", 1, integer(1, 60), "seconds between checks for timed-out work"),
])
