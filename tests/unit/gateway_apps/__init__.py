"""Tiny function apps for the gateway's unit tests."""
