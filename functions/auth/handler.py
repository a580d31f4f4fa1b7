"""Lambda entry point for AuthFunction (API Gateway HTTP API, payload v2)."""

from functions.auth.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
