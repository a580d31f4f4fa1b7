"""Entities, value objects, state machines and rules. No I/O."""
