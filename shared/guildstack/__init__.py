"""Guildstack: a serverless backend that hosts teams of LLM agents for multi-tenant products."""

__version__ = "0.1.0"
