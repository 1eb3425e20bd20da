"""VectorStore adapters: in-memory (library users and tests); Qdrant and pgvector arrive next."""
