"""LLMEngine adapters. Each module imports its engine library lazily, so importing this package is cheap."""
