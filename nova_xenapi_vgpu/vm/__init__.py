"""The VM path: VGPUs for a claim, start on this host, stop, detach,
orphans (see ``lifecycle.Builder``)."""
