"""archipelago.nbd — the NBD frontend (nbdd): export name = volume name.

Modules, from the wire up:
  proto         constants and encoders of the NBD protocol
  wire          socket helpers (exact receives, vectored sends)
  negotiate     fixed newstyle handshake (OPT_GO/INFO/LIST/EXPORT_NAME/..., meta contexts)
  transmission  the request loop: validation once, in the core, then the backend
  backend       the Backend interface (API v1) and the Filter/ReadOnlyView filters
  memory, file  RAM-disk and raw-file backends
  registry      export name -> shared backend, through providers (the volume seam)
  settings      the [nbd] config section, listen addresses, the allow-list
  server        listeners, allow-list at accept, thread per connection, status file
  client        a small NBD client (the kernel connector's handshake, tests)
  daemon        `archipelago-nbdd` / `python -m archipelago.nbd`
See docs/nbd.md.
"""
