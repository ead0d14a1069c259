"""Verifications per second, HS256 and RS256: bare `jwt.decode` vs kairos-jwt cold and cached.

Run with the plugin's venv: `python plugins/kairos-jwt/bench/bench_verify.py [--tokens N]`.
Prints a markdown table. Every path checks the same things: signature, exp, iss and aud.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kairos_jwt import JwtConfig, TokenVerifier, build_keyring

ISSUER = "https://issuer.bench"
AUDIENCE = "api"
SECRET = b"bench-secret-0123456789abcdef-0123456789abcdef"


def mint(key: Any, alg: str, count: int) -> list[str]:
    now = int(time.time())
    return [
        jwt.encode(
            {"sub": f"user{i}", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600},
            key,
            algorithm=alg,
        )
        for i in range(count)
    ]


def run_us(fn: Callable[[str], Any], tokens: Sequence[str]) -> float:
    """Mean CPU µs per call over all tokens (process CPU time: robust to a busy machine)."""
    start = time.process_time_ns()
    for token in tokens:
        fn(token)
    return (time.process_time_ns() - start) / len(tokens) / 1000


def kairos_verifier(key_config: dict[str, Any]) -> TokenVerifier:
    config = JwtConfig.model_validate(
        {
            "keys": [key_config],
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "cache": {"max_entries": 1_000_000},
        }
    )
    return TokenVerifier(config, build_keyring(config, None), {}, time.time)


def measure(
    alg: str, sign_key: Any, verify_key: Any, key_config: dict[str, Any], count: int, repeats: int
) -> dict[str, float]:
    """Median per path; the paths are interleaved in every repeat so load affects all alike."""
    tokens = mint(sign_key, alg, count)
    verifier = kairos_verifier(key_config)
    cache = verifier.cache
    assert cache is not None
    hot = [tokens[0]] * (count * 10)

    def bare(token: str) -> Any:
        return jwt.decode(token, verify_key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)

    def uncached(token: str) -> Any:
        return verifier.verify_uncached(token, time.time())

    runs: dict[str, list[float]] = {"bare": [], "cold": [], "uncached": [], "cached": []}
    for _ in range(repeats):
        runs["bare"].append(run_us(bare, tokens))
        cache.clear()
        runs["cold"].append(run_us(verifier.verify, tokens))
        assert len(cache) == len(tokens)  # every call was a miss that got stored
        runs["uncached"].append(run_us(uncached, tokens))
        runs["cached"].append(run_us(verifier.verify, hot))
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000, help="distinct tokens per algorithm")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    results = {
        "HS256": measure(
            "HS256", SECRET, SECRET, {"secret": SECRET.decode()}, args.tokens, args.repeats
        ),
        "RS256 (2048)": measure("RS256", private, public, {"pem": pem}, args.tokens, args.repeats),
    }
    print(
        f"kairos-jwt verification: CPU µs per verification, {args.tokens} distinct tokens, "
        f"median of {args.repeats} interleaved runs\n"
    )
    print(
        "| alg | bare jwt.decode | kairos cold (miss+store) | kairos uncached | kairos cached | cold/bare (target <= 1.2) | cold/cached (target >= 10) | verifications/s bare / cold / cached |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for alg, r in results.items():
        print(
            f"| {alg} | {r['bare']:.2f} | {r['cold']:.2f} | {r['uncached']:.2f} | {r['cached']:.2f} "
            f"| {r['cold'] / r['bare']:.2f}x | {r['cold'] / r['cached']:.1f}x "
            f"| {1e6 / r['bare']:,.0f} / {1e6 / r['cold']:,.0f} / {1e6 / r['cached']:,.0f} |"
        )


if __name__ == "__main__":
    main()
