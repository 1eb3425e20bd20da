"""The ``mindfu`` command line."""
