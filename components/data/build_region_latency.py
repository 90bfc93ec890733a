"""Build an estimated inter-region round-trip-time matrix from region coordinates.

The model is deliberately simple and is only meant to order endpoints nearest-first:

* ``d`` is the great-circle (haversine) distance in km between the two regions' cities,
  taken from ``region_coordinates.json`` next to this script, on a sphere of radius 6371 km;
* light in optical fibre travels about 200 km per ms, and real cable routes are about
  1.5 times longer than the great circle, so one way takes ``d * 1.5 / 200`` ms;
* a round trip is twice that, plus 2 ms of fixed cost (switching, serialisation):
  ``RTT_ms = round(2 + 2 * d * 1.5 / 200)``;
* the RTT of a region to itself is 1 ms.

The result is written to ``region_latency.json`` next to this script. Replace it with measured
p50 inter-region RTTs when they are available.

Run from the project root::

    python components/data/build_region_latency.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
COORDINATES_FILE = HERE / "region_coordinates.json"
OUTPUT_FILE = HERE / "region_latency.json"

EARTH_RADIUS_KM = 6371.0
FIBRE_KM_PER_MS = 200.0
ROUTE_INFLATION = 1.5
FIXED_COST_MS = 2.0
SAME_REGION_RTT_MS = 1


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def estimated_rtt_ms(distance_km: float) -> int:
    """Estimated round-trip time in whole ms for a great-circle distance in km."""
    return round(FIXED_COST_MS + 2 * distance_km * ROUTE_INFLATION / FIBRE_KM_PER_MS)


def build_matrix(regions: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """RTT from every region to every region (including itself), keys sorted."""
    names = sorted(regions)
    matrix: dict[str, dict[str, int]] = {}
    for src in names:
        row: dict[str, int] = {}
        for dst in names:
            if src == dst:
                row[dst] = SAME_REGION_RTT_MS
            else:
                a, b = regions[src], regions[dst]
                row[dst] = estimated_rtt_ms(haversine_km(a["lat"], a["lon"], b["lat"], b["lon"]))
        matrix[src] = row
    return matrix


def render(source: str, matrix: dict[str, dict[str, int]]) -> str:
    """JSON text with one line per region row, so the file stays small and diffable."""
    rows = [f"  {json.dumps(src)}: {json.dumps(row)}" for src, row in matrix.items()]
    lines = ["{", f' "_source": {json.dumps(source)},', ' "unit": "ms",', ' "rtt": {', ",\n".join(rows), " }", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    regions = json.loads(COORDINATES_FILE.read_text(encoding="utf-8"))["regions"]
    matrix = build_matrix(regions)
    source = (
        "Estimated, not measured: RTT_ms = round(2 + 2 * d * 1.5 / 200), where d is the haversine "
        "great-circle distance in km (Earth radius 6371 km) between the region cities in "
        "components/data/region_coordinates.json (light in fibre ~200 km/ms, 1.5 route-inflation "
        "factor, 2 ms fixed cost); a region to itself is 1 ms. Used only to order endpoints "
        "nearest-first; replace with measured p50 inter-region RTTs (e.g. from an inter-region "
        "latency monitor) when available. Regenerate with: python components/data/build_region_latency.py"
    )
    OUTPUT_FILE.write_text(render(source, matrix), encoding="utf-8")
    print(f"wrote {OUTPUT_FILE} ({len(matrix)} regions)")


if __name__ == "__main__":
    main()
