"""Nearest LLM endpoint first: each region's ordered endpoint list, decided at deploy time.

Pure: no Pulumi import. For ``bedrock`` the endpoints are regions: a region that serves the
model itself comes first, the others follow by estimated round-trip time from
``data/region_latency.json`` (its ``_source`` says where the figures come from). For
``openai`` the endpoints are URLs and keep the order the config gives (put them nearest
first; with a domain, ``llm.<zone>`` latency records choose among them at DNS time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

LATENCY_FILE = Path(__file__).resolve().parent / "data" / "region_latency.json"


@cache
def latency_table(path: Path = LATENCY_FILE) -> dict[str, dict[str, float]]:
    """Estimated RTT in ms between regions: ``table[a][b]``."""
    return json.loads(path.read_text())["rtt"]


def ordered_endpoints(region: str, provider: str, endpoints: Sequence[str]) -> list[str]:
    """The endpoints ``region``'s agent-step tries, in order. Never empty."""
    if provider == "openai":
        if not endpoints:
            raise ValueError("provider openai needs at least one endpoint URL")
        return list(endpoints)
    if not endpoints:
        return [region]  # each region's own Bedrock
    table = latency_table()
    if region not in table:
        raise ValueError(f"no latency figures for {region}; add it to {LATENCY_FILE.name}")
    unknown = [e for e in endpoints if e not in table[region]]
    if unknown:
        raise ValueError(f"no latency figures from {region} to {', '.join(unknown)}")
    return sorted(endpoints, key=lambda e: (e != region, table[region][e], e))
