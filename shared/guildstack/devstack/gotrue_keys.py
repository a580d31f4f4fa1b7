"""Signing keys and password hashing for the devstack's Supabase Auth stand-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class SigningKey:
    """An ES256 key pair with its `kid`, as Supabase's asymmetric JWT signing keys."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), secrets.token_hex(8))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Keep the key across devstack restarts, so issued tokens stay valid."""
        if path.exists():
            data = json.loads(path.read_text())
            key = serialization.load_pem_private_key(data["pem"].encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} does not hold an EC key")
            return cls(key, data["kid"])
        created = cls.generate()
        pem = created.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"kid": created.kid, "pem": pem}, handle)
        return created

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def verify(self, token: str, *, issuer: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            self.private_key.public_key(),
            algorithms=["ES256"],
            audience="authenticated",
            issuer=issuer,
            options={"require": ["exp", "sub", "session_id"]},
        )
        return claims


def api_key_for(key: SigningKey, role: str) -> str:
    """A Supabase-style API key (`anon` / `service_role`): a long-lived JWT naming the role."""
    now = int(time.time())
    return key.sign(
        {"iss": "supabase-demo", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"$scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encoded[0]}${encoded[1]}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("$scrypt$"):
        # Spend the same time as a real check, so timing does not reveal unknown emails.
        hash_password(password)
        return False
    _, _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))
