"""Adapters: one module per technology, each implementing a mindfu_core port; wired by the container."""
