"""The rocks commands of DESIGN §4, as they appear in a Rocks frontend's command tree.

Each becomes /opt/rocks/lib/python/rocks/commands/<words>/__init__.py, a thin
Command that runs rocks-command-archipelago's entry point with the same words
(see bridge.py). Sync and migration options travel as key=value params.
"""
COMMANDS = {
    "add host storagemap": "Map a volume of a NAS pool to a host: NAS POOL VOLUME "
                           "REMOTEHOST SIZE [remotepool=P] [img_sync=B] [image=IMAGE].",
    "add host storageimg": "Import a disk image as a hashed, read-only image: "
                           "NAS POOL IMAGE source=FILE.",
    "list host storageimg": "List the images of a NAS: NAS.",
    "remove host storageimg": "Remove an image or volume from a NAS pool: NAS POOL VOLUME.",
    "list host storagemap": "List the mappings of a NAS: NAS.",
    "remove host storagemap": "Unmap a volume: NAS VOLUME.",
    "set host storagemap": "Change a mapping: NAS VOLUME [remotehost=H] [img_sync=B] "
                           "[frequency=S] [uploadspeed=R] [downloadspeed=R].",
    "clean host storagemap": "Force-clean a stuck mapping: NAS VOLUME.",
    "list host storagedev": "List the devices mapped on a compute node: HOST.",
    "list host storageattr": "List NAS attributes: NAS.",
    "set host storageattr": "Set a NAS attribute: NAS ATTR VALUE.",
    "list host volattr": "List a volume's attributes: NAS VOLUME.",
    "set host volattr": "Set a volume attribute: NAS VOLUME ATTR VALUE.",
    "set host vm nas": "Place VM disks on a NAS: VM... nas=NAS [pool=POOL].",
    "list host vm nas": "List the NAS of VMs: [VM...].",
    "remove host vm nas": "Forget the NAS of VMs: VM....",
    "report host archipelago": "Print /etc/archipelago/archipelago.conf for a host: HOST.",
}
