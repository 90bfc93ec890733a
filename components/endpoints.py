"""Nearest LLM endpoint first: each region's ordered endpoint list, decided at deploy time.

Pure: no Pulumi import. For ``bedrock`` the endpoints are regions: a region that serves the
model itself comes first, the others follow by estimated round-trip time from
``data/region_latency.json`` (its ``_source`` says where the figures come from). For
``openai`` the endpoints are URLs: those with a region in ``llm.endpointRegions`` are
ordered by the same latency table, the rest keep the config's order; with a domain,
``llm.<zone>`` latency records with health checks also choose among them at DNS time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

LATENCY_FILE = Path(__file__).resolve().parent / "data" / "region_latency.json"


@cache
def latency_table(path: Path = LATENCY_FILE) -> dict[str, dict[str, float]]:
    """Estimated RTT in ms between regions: ``table[a][b]``."""
    return json.loads(path.read_text())["rtt"]


def ordered_endpoints(
    region: str, provider: str, endpoints: Sequence[str], endpoint_regions: Mapping[str, str] | None = None
) -> list[str]:
    """The endpoints ``region``'s agent-step tries, in order. Never empty. OpenAI-compatible
    URLs whose region is known are ordered by latency from ``region``; the others follow in
    the order the config gives."""
    if provider == "openai":
        if not endpoints:
            raise ValueError("provider openai needs at least one endpoint URL")
        located = dict(endpoint_regions or {})
        table = latency_table()
        order = {url: i for i, url in enumerate(endpoints)}
        return sorted(
            endpoints,
            key=lambda url: (
                url not in located,
                table.get(region, {}).get(located.get(url, ""), 0.0) if url in located else 0.0,
                order[url],
            ),
        )
    if not endpoints:
        return [region]  # each region's own Bedrock
    table = latency_table()
    if region not in table:
        raise ValueError(f"no latency figures for {region}; add it to {LATENCY_FILE.name}")
    unknown = [e for e in endpoints if e not in table[region]]
    if unknown:
        raise ValueError(f"no latency figures from {region} to {', '.join(unknown)}")
    return sorted(endpoints, key=lambda e: (e != region, table[region][e], e))
