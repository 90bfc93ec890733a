"""What the arithmetic produces: a priced :class:`Line`, a :class:`Capacity` row, and the
month and the million turns they are counted in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cost.prices import Entry

HOURS_PER_MONTH = 730  # AWS's pricing examples use 730 hours a month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = 30.4375  # 365.25 / 12, the month cost.measure counts storage in
GIB = 1024**3
TURNS = 1_000_000


@dataclass(frozen=True)
class Line:
    """Dollars of one part of one service (a month, or per ``TURNS`` turns), and how they are made."""

    group: str
    part: str
    usd: float
    detail: str = ""


def total(lines: Iterable[Line]) -> float:
    return sum(line.usd for line in lines)


@dataclass(frozen=True)
class Capacity:
    """What a rate of turns needs of one thing in each region, beside its limit (None: no quota)."""

    what: str
    needed: float
    limit: float | None
    limit_name: str
    url: str
    confirmed: bool

    @property
    def over(self) -> bool:
        return self.limit is not None and self.needed > self.limit

    @classmethod
    def of_quota(cls, what: str, needed: float, quota: Entry) -> Capacity:
        """A row against one of AWS's default quotas (``prices.json`` "quotas")."""
        return cls(what, needed, quota.value, quota.per, quota.url, quota.confirmed)
