"""Lambda entry point for ChatFunction (API Gateway HTTP API, payload v2)."""

from functions.chat.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
