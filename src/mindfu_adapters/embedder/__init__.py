"""Embedder adapters: fastembed over an ONNX export (default) and sentence-transformers (reference)."""
