"""Persistence: SQLAlchemy 2 models, engine set-up and the unit of work."""
