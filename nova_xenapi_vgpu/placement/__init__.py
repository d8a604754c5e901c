"""Placement beside the PCI pools: the provider tree Nova expects."""
