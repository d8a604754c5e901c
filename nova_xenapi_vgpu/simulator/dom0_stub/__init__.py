"""A stand-in for dom0's XenAPIPlugin module, put on a plugin's path."""
