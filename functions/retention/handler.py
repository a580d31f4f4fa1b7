"""Lambda entry point for RetentionFunction (EventBridge schedule)."""

from functions.retention.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
