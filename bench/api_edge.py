"""The API's edge code: answer chunking throughput and JWT verification time.

    python -m bench.api_edge

Chunking: a 1 MB answer cut into WebSocket frames (``chunk_frames``), beside a baseline
of ``json.dumps`` of the same text (the least any JSON framing must do), in MB/s.
Authorizer: verification per token with the JWKS cached, and with a cold cache (the JWKS
document parsed again for every token), beside PyJWT + cryptography verifying the same
token (an independent implementation), in microseconds. All measured in this run.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.shared.streaming import chunk_frames
from handlers.shared.tokens import JwksCache, TokenVerifier

ISSUER, AUDIENCE = "https://auth.example.com/", "agent-infra"


def per_call(function, repeat: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode().rstrip("=")


def main() -> int:
    text = ('The agent thinks, calls a tool, and answers. Ünïcödé 漢字 😀 "quoted"\n' * 20_000)[: 1024 * 1024]
    size_mb = len(text.encode()) / 1e6
    chunk = per_call(lambda: sum(len(f) for f in chunk_frames("01JABCDEFGHJKMNPQRSTVWXYZ0", text)), 5)
    dumps = per_call(lambda: json.dumps(text, ensure_ascii=False).encode(), 5)
    frames = list(chunk_frames("01JABCDEFGHJKMNPQRSTVWXYZ0", text))
    print(f"chunking a {size_mb:.2f} MB answer into {len(frames)} frames (largest {max(map(len, frames))} bytes)")
    print(f"  chunk_frames        {size_mb / chunk:8.1f} MB/s")
    print(f"  baseline json.dumps {size_mb / dumps:8.1f} MB/s   ratio {chunk / dumps:.2f}x the baseline's time")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwks = {
        "keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64(numbers.n), "e": b64(numbers.e)}]
    }
    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    cached = TokenVerifier(ISSUER, AUDIENCE, JwksCache(lambda: jwks))

    def uncached():
        TokenVerifier(ISSUER, AUDIENCE, JwksCache(lambda: json.loads(json.dumps(jwks)))).verify(token)

    public = key.public_key()
    warm = per_call(lambda: cached.verify(token), 2_000)
    cold = per_call(uncached, 500)
    library = per_call(lambda: jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER), 2_000)
    print("verifying one RS256 token (2048-bit key)")
    print(f"  ours, JWKS cached     {warm * 1e6:8.1f} us   ratio {warm / library:.2f}x")
    print(f"  ours, JWKS uncached   {cold * 1e6:8.1f} us   ratio {cold / library:.2f}x")
    print(f"  baseline PyJWT+crypto {library * 1e6:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
