"""Lambda entry point for RunsFunction (API Gateway HTTP API, payload v2)."""

from functions.runs.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
