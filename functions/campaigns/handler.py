"""Lambda entry point for CampaignsFunction (API Gateway HTTP API, payload v2)."""

from functions.campaigns.app import app
from guildstack.http.lambda_handler import lambda_handler

handler = lambda_handler(app)
