"""Nearest-first endpoint lists, from the latency table."""

import json

import pytest

from components.config import regions_by_partition
from components.endpoints import LATENCY_FILE, latency_table, ordered_endpoints


def test_the_latency_table_covers_every_region_symmetrically_and_cites_its_source():
    raw = json.loads(LATENCY_FILE.read_text())
    assert raw["_source"].startswith("Estimated, not measured")
    table = latency_table()
    regions = set(regions_by_partition()["aws"])
    assert set(table) == regions
    for a in regions:
        assert table[a][a] == 1
        for b in regions:
            assert table[a][b] == table[b][a]


def test_a_region_serving_the_model_is_its_own_nearest_then_by_latency():
    endpoints = ["ap-northeast-1", "eu-west-1", "us-east-1", "us-west-2"]
    assert ordered_endpoints("us-east-1", "bedrock", endpoints) == [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "ap-northeast-1",
    ]
    assert ordered_endpoints("eu-central-1", "bedrock", endpoints)[0] == "eu-west-1"
    assert ordered_endpoints("ap-southeast-2", "bedrock", endpoints)[0] == "ap-northeast-1"


def test_no_endpoints_means_the_regions_own_bedrock_and_openai_keeps_the_given_order():
    assert ordered_endpoints("sa-east-1", "bedrock", []) == ["sa-east-1"]
    urls = ["https://b.example.com", "https://a.example.com"]
    assert ordered_endpoints("us-east-1", "openai", urls) == urls
    with pytest.raises(ValueError, match="needs at least one endpoint"):
        ordered_endpoints("us-east-1", "openai", [])
