"""img_sync on the NAS (DESIGN §5): the sync job table (models.py), the stream
receiver (receiver.py) and the mapping flow for replicas (flow.py)."""
