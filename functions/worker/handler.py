"""Lambda entry point for WorkerFunction (SQS event source on StepsQueue)."""

from functions.worker.app import create
from guildstack.bootstrap import build
from guildstack.runtime import instrumented

handler = instrumented(create(build()))
