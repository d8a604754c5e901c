"""Nova's PCI framework, extended for vGPUs as the seed proposes.

Devices keyed by uuid with no PCI address, requests tagged with vGPU
types, pools of vGPU slots with NUMA affinity, and claims that XAPI's own
choice of pGPU honours in every start order.
"""
