"""Lambda entry point for MemoryFunction (API Gateway HTTP API, payload v2)."""

from functions.memory.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
