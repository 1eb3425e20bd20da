"""Stopping a running llama_decode from another thread, through llama.cpp's abort callback."""

from __future__ import annotations

import ctypes
from typing import Any


class AbortFlag:
    """A flag llama.cpp's compute thread polls between two nodes of a graph (``llama_set_abort_callback``);
    raised, it makes the running ``llama_decode`` return 2.

    The callback is libc's ``strlen`` over a two-byte buffer: it returns 0 while the first byte is 0 and 1
    once it is 1, which is the ``bool (*)(void *)`` llama.cpp calls. A Python callback would take the GIL
    at every node (hundreds a step, each waiting on whatever thread holds it); this costs nanoseconds and
    no lock. Where libc cannot be found the flag does nothing and a cancel waits for its step to end."""

    def __init__(self, context: Any) -> None:
        import llama_cpp

        self._byte = ctypes.create_string_buffer(2)
        try:
            strlen = ctypes.CDLL(None).strlen
        except (OSError, AttributeError):  # no libc symbols in this process (Windows)
            return
        address = ctypes.cast(strlen, ctypes.c_void_p).value
        if address is None:
            return
        self._callback = llama_cpp.ggml_abort_callback(address)  # referenced as long as the context
        llama_cpp.llama_set_abort_callback(
            context.ctx, self._callback, ctypes.cast(self._byte, ctypes.c_void_p)
        )

    def raise_(self) -> None:
        self._byte[0] = b"\x01"

    def lower(self) -> None:
        self._byte[0] = b"\x00"


#: what llama_decode returns when its abort callback stopped it
DECODE_ABORTED = 2


__all__ = ["DECODE_ABORTED", "AbortFlag"]
