"""Lambda entry point for AgentsFunction (API Gateway HTTP API, payload v2)."""

from functions.agents.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
