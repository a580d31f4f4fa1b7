"""Local runtime and emulators. Never imported by production code, never shipped."""
