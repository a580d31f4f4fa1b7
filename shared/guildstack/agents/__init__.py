"""Catalog loading, prompt assembly, routing and the discussion protocol."""
