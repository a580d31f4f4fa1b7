"""Every size limit of the API, defined once. The domain enforces them (with a 422 that
names the field and the limit); request schemas reuse them, so a limit never has two
values. Fields the domain checks with its own error are bounded in the schemas only by
`MAX_BODY_TEXT_CHARS`, which keeps absurd bodies out before any work is done."""

from __future__ import annotations

# Any one text field of a request body.
MAX_BODY_TEXT_CHARS = 600_000

# All request headers together (names and values): 431 beyond. API Gateway's HTTP API
# refuses more than 10 KiB of request line and headers before the function is called.
MAX_HEADER_BYTES = 16_384

# Pages of lists.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# Runs.
MAX_NODES = 500
MAX_DEPENDENCIES = 100
MAX_RUN_INPUT_CHARS = 20_000
MAX_PROMPT_CHARS = 20_000
MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 2_000
MAX_ANSWER_CHARS = 20_000
MAX_RUN_BUDGET_USD = 100_000
MAX_EVENTS_PER_PAGE = 500
MAX_WAIT_SECONDS = 25

# Memory.
MAX_MEMORY_CHARS = 8_000
MAX_DOCUMENT_CHARS = 500_000
MAX_DOCUMENT_TITLE_CHARS = 300
MAX_QUERY_CHARS = 2_000
MAX_SEARCH_RESULTS = 50
MAX_SEARCH_COLLECTIONS = 20
MAX_METADATA_KEYS = 50
MAX_EMBEDDING_DIMENSIONS = 4_096
