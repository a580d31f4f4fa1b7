#!/bin/sh
# StreamFunction's entry under the Lambda Web Adapter: the adapter proxies the function
# URL's requests to this server and streams its responses back (RESPONSE_STREAM).
exec python3 -m uvicorn functions.stream.app:app --host 127.0.0.1 --port "${PORT:-8080}" --no-access-log
