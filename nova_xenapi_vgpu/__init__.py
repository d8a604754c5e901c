"""vGPUs for OpenStack Nova on XenServer through Nova's PCI framework."""
