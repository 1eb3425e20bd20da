"""Model format conversions: a served GGUF to trainable Hugging Face weights, and a tuned model back to GGUF
(with llama.cpp's own conversion script, fetched from the llama-cpp-python source on PyPI)."""
