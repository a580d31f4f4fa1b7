"""Root fixtures. Each real local service has its fixture module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.auth",
    "tests.fixtures.gateway",
    "tests.fixtures.sqs",
    "tests.fixtures.engine",
]
