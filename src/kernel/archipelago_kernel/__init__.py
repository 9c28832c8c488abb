"""archipelago_kernel: volumes served by the local nbdd as kernel block devices.

  connector   the Connector interface (os-brick style) and the method table
  fuse_loop   FUSE+loop: libnbd's nbdfuse exposes the export as a file, losetup on top
  netlink     the kernel nbd driver over generic netlink (not testable on hosts
              without the nbd module; kept small and marked as such)
  devices     is a block device mounted, held or open?
  state       mapping records under NODE.run_dir/kernel (showmapped survives restarts)
  mapper      map / unmap / showmapped: idempotent, self-cleaning
  cli         the click commands vlmc adds: map, unmap, showmapped
"""
