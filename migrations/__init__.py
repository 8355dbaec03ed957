"""Alembic environment and versions of the CVSM SQL schema (run by `index.db.migrate`)."""
