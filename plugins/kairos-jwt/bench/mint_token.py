"""Print a long-lived HS256 token for proxy-jwt.yaml (`--alg RS256` is not needed there)."""

from __future__ import annotations

import time

import jwt

SECRET = "kairos-bench-secret-0123456789abcdef-0123456789"

if __name__ == "__main__":
    now = int(time.time())
    claims = {"sub": "bench", "iss": "https://issuer.bench", "aud": "api", "iat": now}
    print(jwt.encode({**claims, "exp": now + 30 * 86400}, SECRET, algorithm="HS256"))
