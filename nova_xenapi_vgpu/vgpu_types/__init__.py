"""What a vGPU type is to Nova: PCI devices, aliases and requests.

Empty until the PCI-framework work lands; see the README's architecture.
"""
