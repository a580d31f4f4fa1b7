"""What checking a token costs per request: the JWT alone (ES256 signature and claims),
then with the account check (`TokenGate`) when its answer is cached, and when it is not
(the first request of a user in a container, then once per TTL) with and without the
session check (`JWT_CHECK_SESSION`), on the embedded PostgreSQL. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx
import psycopg

from guildstack.adapters.jwt_verifier import JwksCache, JwtVerifier
from guildstack.adapters.postgres.accounts import PostgresAccountDirectory
from guildstack.adapters.postgres.database import PostgresDatabase
from guildstack.devstack.gotrue_keys import SigningKey
from guildstack.observability import logger
from guildstack.services.tokens import TokenGate
from tests.bench.model_call import timed
from tests.bench.support import bench_database

ISSUER = "http://bench.test/auth/v1"


async def _account(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    user, session = uuid.uuid4(), uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated',"
            " 'authenticated')",
            (user, f"{user}@example.com"),
        )
        await conn.execute(
            "insert into auth.sessions (id, user_id) values (%s, %s)", (session, user)
        )
    return user, session


async def run(url: str, runs: int) -> list[tuple[str, list[float]]]:
    user, session = await _account(url)
    key = SigningKey.generate()
    jwks = {"keys": [key.public_jwk()]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    now = int(time.time())
    token = key.sign(
        {"iss": ISSUER, "aud": "authenticated", "sub": str(user), "role": "authenticated",
         "iat": now, "exp": now + 3600, "session_id": str(session)}
    )  # fmt: skip
    verifier = JwtVerifier(
        issuer=ISSUER,
        audience="authenticated",
        jwks=JwksCache(f"{ISSUER}/.well-known/jwks.json", transport=transport),
        hs256_secret=None,
        leeway_seconds=30,
    )
    database = PostgresDatabase(url, max_size=4)
    directory = PostgresAccountDirectory(database)
    cached = TokenGate(verifier, directory, ttl_seconds=3600)
    account = TokenGate(verifier, directory, ttl_seconds=0)
    sessions = TokenGate(verifier, directory, ttl_seconds=0, check_sessions=True)
    try:
        return [
            ("JWT only", await timed(lambda: verifier.verify(token), runs)),
            ("+ account, answer cached", await timed(lambda: cached.verify(token), runs)),
            ("+ account, asked (cache miss)", await timed(lambda: account.verify(token), runs)),
            (
                "+ account and session, asked (cache miss)",
                await timed(lambda: sessions.verify(token), runs),
            ),
        ]
    finally:
        await database.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    calls = max(200, args.runs * 50)
    with bench_database() as url:
        rows = asyncio.run(run(url, calls))
    print(f"## Token check per request ({calls} checks each)\n")
    print("| check | median ms | p95 ms |")
    print("|---|---:|---:|")
    for label, samples in rows:
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"| {label} | {statistics.median(samples):.3f} | {p95:.3f} |")
    session_cost = statistics.median(rows[3][1]) - statistics.median(rows[2][1])
    print(
        f"\nthe session check changes a cache miss by {session_cost:+.3f} ms (one query either"
        " way); a miss happens once per user (and session) per container per"
        " TOKEN_ACCOUNT_CACHE_SECONDS"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
