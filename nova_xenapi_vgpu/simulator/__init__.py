"""A XAPI simulator: a XenServer host or pool with GPUs, over XML-RPC.

It shares no code with the client side except the hardware descriptions,
so that testing one against the other means something.
"""
