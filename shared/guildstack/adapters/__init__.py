"""The only place SDKs appear."""
