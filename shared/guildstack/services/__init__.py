"""Use cases, one module per area; they depend on the domain and ports only."""
