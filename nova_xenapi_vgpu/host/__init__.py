"""This host's GPU inventory, as XAPI and the dom0 plugin describe it."""
