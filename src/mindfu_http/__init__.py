"""The OpenAI-compatible HTTP facade (FastAPI) over the MindFu core."""
