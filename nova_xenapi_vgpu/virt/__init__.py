"""A compute driver for Nova 34: XenServer VMs, vGPUs Nova's PCI tracker
claims (see ``driver.XenAPIDriver``)."""
