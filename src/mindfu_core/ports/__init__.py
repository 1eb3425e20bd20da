"""Ports: one typing.Protocol per module, implemented by mindfu_adapters."""
