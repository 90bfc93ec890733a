"""Global routing under Pulumi mocks: latency records with health checks, TLS 1.2 domains, or nothing."""

from __future__ import annotations

import pytest

from local.pulumi_mocks import provider_name, run_program, stack_config

ZONE = "agents.example.com"


def with_domain(stack):
    config = stack_config(stack)
    config["agent-infra:domain"] = {"zone": ZONE}
    return config


@pytest.fixture(scope="module")
def routed():
    return {stack: run_program(with_domain(stack), stack) for stack in ("dev", "prod")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_latency_record_per_region_per_host_each_with_its_own_health_check(routed, stack):
    run = routed[stack]
    regions = stack_config(stack)["agent-infra:regions"]
    records = [r for r in run.of_type("aws:route53/record:Record") if r.inputs["name"] in (f"api.{ZONE}", f"ws.{ZONE}")]
    assert sorted((r.inputs["name"], r.inputs["setIdentifier"]) for r in records) == sorted(
        (f"{host}.{ZONE}", region) for host in ("api", "ws") for region in regions
    )
    checks = {c.resource_id: c for c in run.of_type("aws:route53/healthCheck:HealthCheck")}
    used = [r.inputs["healthCheckId"] for r in records]
    assert len(set(used)) == len(records), "each record has its own health check"
    rest_ids = {a.inputs["region"]: a.state["id"] for a in run.of_type("aws:apigateway/restApi:RestApi")}
    for record in records:
        region = record.inputs["setIdentifier"]
        assert record.inputs["latencyRoutingPolicies"] == [{"region": region}]
        (alias,) = record.inputs["aliases"]
        assert alias["evaluateTargetHealth"] is True
        assert f".execute-api.{region}.amazonaws.com" in alias["name"]
        check = checks[record.inputs["healthCheckId"]]
        assert check.inputs["type"] == "HTTPS" and check.inputs["resourcePath"] == "/live/v1/health"
        assert check.inputs["fqdn"] == f"{rest_ids[region]}.execute-api.{region}.amazonaws.com", (
            "the region's own endpoint"
        )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_custom_domains_are_tls12_with_a_validated_certificate_per_region(routed, stack):
    run = routed[stack]
    regions = stack_config(stack)["agent-infra:regions"]
    certificates = {c.inputs["region"]: c for c in run.of_type("aws:acm/certificate:Certificate")}
    assert sorted(certificates) == sorted(regions)
    assert all(c.inputs["validationMethod"] == "DNS" for c in certificates.values())
    rest_domains = run.of_type("aws:apigateway/domainName:DomainName")
    ws_domains = run.of_type("aws:apigatewayv2/domainName:DomainName")
    assert len(rest_domains) == len(ws_domains) == len(regions)
    for domain in rest_domains:
        assert domain.inputs["securityPolicy"] == "TLS_1_2"
        assert domain.inputs["regionalCertificateArn"] == certificates[domain.inputs["region"]].state["arn"]
    for domain in ws_domains:
        assert domain.inputs["domainNameConfiguration"]["securityPolicy"] == "TLS_1_2"
    validations = run.of_type("aws:acm/certificateValidation:CertificateValidation")
    assert len(validations) == len(regions)
    assert all(len(v.inputs["validationRecordFqdns"]) == 2 for v in validations)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_routing_resources_use_the_stack_provider(routed, stack):
    for resource in routed[stack].resources:
        if resource.typ.startswith(("aws:route53", "aws:acm")):
            assert provider_name(resource.provider) == "aws"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_without_a_domain_there_are_no_route53_resources(stack):
    run = run_program(stack_config(stack), stack)
    assert not [r for r in run.resources if r.typ.startswith(("aws:route53", "aws:acm"))]
    assert not [c for c in run.calls if c[0].startswith("aws:route53")]
    assert "apiUrl" not in run.outputs


def test_own_llm_endpoints_get_health_checked_latency_records():
    config = with_domain("dev")
    config["agent-infra:llm"] = {
        "provider": "openai",
        "model": "gpt-test",
        "endpoints": ["https://llm-us.example.net/v1", "https://llm-eu.example.net/v1"],
        "endpointRegions": {"https://llm-us.example.net/v1": "us-east-1", "https://llm-eu.example.net/v1": "eu-west-1"},
        "healthPath": "/healthz",
        "apiKey": "sk-test",
    }
    run = run_program(config, "llm")
    records = [r for r in run.of_type("aws:route53/record:Record") if r.inputs["name"] == f"llm.{ZONE}"]
    assert sorted((r.inputs["records"][0], r.inputs["latencyRoutingPolicies"][0]["region"]) for r in records) == [
        ("llm-eu.example.net", "eu-west-1"),
        ("llm-us.example.net", "us-east-1"),
    ]
    checks = {c.resource_id: c for c in run.of_type("aws:route53/healthCheck:HealthCheck")}
    for record in records:
        check = checks[record.inputs["healthCheckId"]]
        assert check.inputs["fqdn"] == record.inputs["records"][0] and check.inputs["resourcePath"] == "/healthz"
    west = next(
        f
        for f in run.of_type("aws:lambda/function:Function")
        if f.inputs["handler"] == "handlers.agent_step.stream_handler" and f.inputs["region"] == "us-west-2"
    )
    import json

    assert json.loads(west.inputs["environment"]["variables"]["LLM_ENDPOINTS"])[0] == "https://llm-us.example.net/v1", (
        "nearest first"
    )
