"""Shared FastAPI pieces: app factory, auth, problem+json errors, limits, request ids."""
