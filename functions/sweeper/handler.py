"""Lambda entry point for SweeperFunction (EventBridge schedule)."""

from functions.sweeper.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
