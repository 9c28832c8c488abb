"""[replica]: local replicas of volumes mapped with img_sync (DESIGN §5)."""
from archipelago.config import Option, Section, choice, integer, size, string
from archipelago.sync.ratelimit import parse_rate

REPLICA = Section("replica", "Local replicas on the compute node (img_sync)", [
    Option("chunk", 1 << 20, size(), "bytes fetched from the NAS at a time (copy on read)"),
    Option("fetch", "background", choice("background", "paused"),
           "'background': copy every chunk not yet local in the background; 'paused': "
           "only on first read or write (tests; `rocks set ... downloadspeed` still applies)"),
    Option("downloadspeed", None, parse_rate,
           "default rate of the background copy (e.g. 100M); the NAS's downloadspeed wins"),
    Option("workers", 2, integer(1, 64), "sync jobs (streams to the NAS) run at once"),
    Option("listen", "127.0.0.1", string, "address the replicas' NBD servers listen on"),
])
