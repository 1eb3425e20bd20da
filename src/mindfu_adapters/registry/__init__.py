"""DocumentRegistry adapters: in-memory now; the SQL table under alembic arrives with the database layer."""
