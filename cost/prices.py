"""The price table: ``cost/prices.json`` loaded and checked, and the rate of each region.

Every price, quota and fact carries its page, the date it was read and whether the figure
was confirmed there (:class:`Entry`); a region's own figure where it differs from
us-east-1's, and the regions for which none was found. :class:`Regional` says which
regions' rates a cost takes: the turn's region, every replica, or the replicas but one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class Entry:
    """One price, quota or fact of ``prices.json`` with where it comes from."""

    key: str
    value: float
    per: str
    url: str
    read: str
    confirmed: bool
    evidence: str
    regions: Mapping[str, Entry] = field(default_factory=dict)
    """A region's own figure where it differs from ``value`` (us-east-1's), each with its source."""
    unsourced_in: tuple[str, ...] = ()
    """Regions for which no figure was found: they are priced at ``value``, and the report says so."""

    def at(self, region: str | None) -> Entry:
        """The figure that applies in ``region``: its own if prices.json has one, else us-east-1's."""
        return self.regions.get(region, self) if region else self


@dataclass(frozen=True)
class ModelPrice:
    """A model's token prices per 1M tokens on one route (global, geographic, in-region, or an
    OpenAI-compatible API), and its output speed, which decides how long a turn waits for it."""

    model_id: str
    name: str
    route: str
    input_per_million: float
    output_per_million: float
    cache_read_per_million: float | None
    """None: the model has no prompt caching."""
    cache_write_per_million: float | None
    """A 5-minute cache write; None: the model has no prompt caching."""
    url: str
    read: str
    confirmed: bool
    evidence: str
    output_tokens_per_second: float | None
    """None: no benchmark found; the model wait is then --model-wait or the fallback."""
    first_token_seconds: float | None
    speed_url: str | None
    speed_confirmed: bool
    speed_evidence: str


MODEL_FIELDS = (
    "name",
    "route",
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "url",
    "read",
    "confirmed",
    "evidence",
    "output_tokens_per_second",
    "first_token_seconds",
    "speed_url",
    "speed_confirmed",
    "speed_evidence",
)
_MODEL_NULLABLE = {
    "cache_read_per_million",
    "cache_write_per_million",
    "output_tokens_per_second",
    "first_token_seconds",
    "speed_url",
}


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Entry]
    quotas: Mapping[str, Entry]
    facts: Mapping[str, Entry]
    models: Mapping[str, ModelPrice]
    region: str
    read: str

    def usd(self, key: str, region: str | None = None) -> float:
        """``key``'s price in ``region`` (us-east-1's where prices.json has no figure of its own)."""
        return self.prices[key].at(region).value

    def quota(self, key: str) -> float:
        return self.quotas[key].value

    def fact(self, key: str) -> float:
        return self.facts[key].value


_ENTRY_FIELDS = {"per", "url", "read", "confirmed", "evidence"}
_REGION_FIELDS = {"url", "read", "confirmed", "evidence"}


def _entry(key: str, raw: Mapping[str, Any], value_key: str, per: str | None = None) -> Entry:
    return Entry(
        key,
        float(raw[value_key]),
        raw.get("per", per or ""),
        raw["url"],
        raw["read"],
        bool(raw["confirmed"]),
        raw["evidence"],
    )


def _entries(section: Mapping[str, Mapping[str, Any]], value_key: str) -> dict[str, Entry]:
    out = {}
    for key, raw in section.items():
        missing = ({value_key} | _ENTRY_FIELDS) - set(raw)
        if missing:
            raise ValueError(f"prices.json: {key} lacks {', '.join(sorted(missing))}")
        regions = {}
        for region, override in (raw.get("regions") or {}).items():
            missing = ({value_key} | _REGION_FIELDS) - set(override)
            if missing:
                raise ValueError(f"prices.json: {key} in {region} lacks {', '.join(sorted(missing))}")
            regions[region] = _entry(key, override, value_key, raw["per"])
        out[key] = dataclasses.replace(
            _entry(key, raw, value_key), regions=regions, unsourced_in=tuple(raw.get("unsourced_in", ()))
        )
    return out


def _model(model_id: str, raw: Mapping[str, Any]) -> ModelPrice:
    """One entry of prices.json "models"; every field must be there (null only where the
    model has no prompt caching or no benchmark was found), so a gap is an error, not a 0."""
    missing = [name for name in MODEL_FIELDS if name not in raw]
    if missing:
        raise ValueError(f"prices.json: model {model_id} lacks {', '.join(missing)}")
    nulls = [name for name in MODEL_FIELDS if raw[name] is None and name not in _MODEL_NULLABLE]
    if nulls:
        raise ValueError(f"prices.json: model {model_id} has no value for {', '.join(nulls)}")

    def number(name: str) -> float | None:
        return None if raw[name] is None else float(raw[name])

    return ModelPrice(
        model_id=model_id,
        name=raw["name"],
        route=raw["route"],
        input_per_million=float(raw["input_per_million"]),
        output_per_million=float(raw["output_per_million"]),
        cache_read_per_million=number("cache_read_per_million"),
        cache_write_per_million=number("cache_write_per_million"),
        url=raw["url"],
        read=raw["read"],
        confirmed=bool(raw["confirmed"]),
        evidence=raw["evidence"],
        output_tokens_per_second=number("output_tokens_per_second"),
        first_token_seconds=number("first_token_seconds"),
        speed_url=raw["speed_url"],
        speed_confirmed=bool(raw["speed_confirmed"]),
        speed_evidence=raw["speed_evidence"],
    )


def load_prices(path: Path = PRICES_PATH) -> PriceTable:
    """The price table; every entry must name its page, the date it was read and whether
    the figure was confirmed there, and so must each region's own figure."""
    raw = json.loads(Path(path).read_text())
    return PriceTable(
        prices=_entries(raw["prices"], "usd"),
        quotas=_entries(raw["quotas"], "value"),
        facts=_entries(raw["facts"], "value"),
        models={model_id: _model(model_id, m) for model_id, m in raw["models"].items()},
        region=raw["_about"]["region"],
        read=raw["_about"]["read"],
    )


@dataclass(frozen=True)
class Regional:
    """Where a turn's costs land. Turns split evenly across the stack's regions (the
    assumption the capacity section makes too): a cost billed in the turn's region is the
    mean of the regions' rates; one billed in every replica is the sum of theirs."""

    prices: PriceTable
    regions: tuple[str, ...]

    def turn(self, key: str) -> float:
        """Mean rate over the regions a turn may land in."""
        return sum(self.prices.usd(key, r) for r in self.regions) / len(self.regions)

    def each(self, key: str, regions: Sequence[str] | None = None) -> float:
        """Sum of the rates of ``regions`` (all by default): a cost every one of them bills."""
        return sum(self.prices.usd(key, r) for r in (self.regions if regions is None else regions))

    def others(self, key: str) -> float:
        """What a turn pays in the replicas other than its own: each replica region receives
        the turns of the other regions, (n-1)/n of all turns, at its own rate."""
        n = len(self.regions)
        return self.each(key) * (n - 1) / n if n > 1 else 0.0

    def rates(self, key: str, scale: float = 1.0, regions: Sequence[str] | None = None) -> str:
        """The rates used, region by region, for the line's detail."""
        return "/".join(f"{self.prices.usd(key, r) * scale:g}" for r in (self.regions if regions is None else regions))
