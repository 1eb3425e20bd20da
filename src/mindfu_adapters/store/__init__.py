"""The SQL layer: SQLAlchemy Core (async) over SQLite (aiosqlite) or PostgreSQL (asyncpg)."""
