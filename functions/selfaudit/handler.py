"""Lambda entry point for SelfAuditFunction (EventBridge schedules: daily and weekly)."""

from functions.selfaudit.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
