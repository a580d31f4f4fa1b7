"""Lambda entry point for ToolsFunction (API Gateway HTTP API, payload v2)."""

from functions.tools.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
