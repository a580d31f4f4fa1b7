"""Lambda entry point for DeadLetterFunction (SQS event source on StepsDLQ)."""

from functions.deadletter.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
