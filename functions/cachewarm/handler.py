"""Lambda entry point for CacheWarmFunction (EventBridge schedule, hourly)."""

from functions.cachewarm.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
