"""Document ingestion and retrieval routes (MindFu extensions to the OpenAI API)."""
