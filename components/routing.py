"""Global routing (only with ``domain`` in the config): the nearest healthy region answers.

Per region: an ACM certificate for ``api.<zone>`` and ``ws.<zone>`` validated through DNS,
regional custom domains with TLS 1.2 at least for the REST and the WebSocket API, and one
Route 53 health check per record on that region's ``/v1/health``. Per host and region: a
latency-based alias record with its health check and evaluate-target-health, so a region
whose health check fails drops out of DNS answers. With OpenAI-compatible endpoints whose
regions are given (``llm.endpointRegions``): ``llm.<zone>`` latency records, one per
endpoint, each with an HTTPS health check on ``llm.healthPath``.

ACM gives the same DNS validation record to a domain name in every region of an account,
so the validation records are created once, from the home region's certificate, and every
region's certificate validates against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import DomainConfig, LlmConfig
from components.failover import HEALTH_CHECK_FAILURE_THRESHOLD, HEALTH_CHECK_INTERVAL_SECONDS, HEALTH_PATH


@dataclass(frozen=True, kw_only=True)
class RegionEndpoints:
    """One region's APIs, as its custom domains map them."""

    rest_api_id: pulumi.Input[str]
    websocket_api_id: pulumi.Input[str]
    rest_stage: pulumi.Input[str]
    """The stage's name as an Output of the stage, so mappings wait for it to exist."""
    websocket_stage: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class GlobalRoutingArgs:
    """Inputs of :class:`GlobalRouting`."""

    domain: DomainConfig
    regions: Sequence[str]
    """Every region; the first is the home region."""
    endpoints: Mapping[str, RegionEndpoints]
    partition: str
    """The regions' partition: the health checks probe each API's default host in it."""
    llm: LlmConfig
    """With provider ``openai``: one ``llm.<zone>`` latency record per endpoint whose region
    ``endpointRegions`` gives, each with a health check on ``healthPath``."""


class GlobalRouting(pulumi.ComponentResource):
    """Custom domains, certificates, health checks and latency records for every region."""

    api_domain: str
    """The REST API's host name."""
    ws_domain: str
    """The WebSocket API's host name."""
    health_check_ids: dict[str, pulumi.Output[str]]
    """The REST health check of each region."""

    def __init__(self, name: str, args: GlobalRoutingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:routing:GlobalRouting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        domain = args.domain
        self.api_domain = f"{domain.api_host}.{domain.zone}"
        self.ws_domain = f"{domain.ws_host}.{domain.zone}"
        zone = aws.route53.get_zone_output(
            name=domain.zone, private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        home = args.regions[0]

        certificates = {
            region: aws.acm.Certificate(
                f"{name}-certificate-{region}",
                region=region,
                domain_name=self.api_domain,
                subject_alternative_names=[self.ws_domain],
                validation_method="DNS",
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=False)),
            )
            for region in args.regions
        }
        validation_fqdns = []
        for index, host_name in enumerate((self.api_domain, self.ws_domain)):
            option = certificates[home].domain_validation_options.apply(
                lambda options, d=host_name: next(o for o in options if o.domain_name == d)
            )
            record = aws.route53.Record(
                f"{name}-validation-{index}",
                zone_id=zone.zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value)],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            validation_fqdns.append(record.fqdn)

        self.health_check_ids = {}
        for region in args.regions:
            endpoints = args.endpoints[region]
            validated = aws.acm.CertificateValidation(
                f"{name}-certificate-validation-{region}",
                region=region,
                certificate_arn=certificates[region].arn,
                validation_record_fqdns=validation_fqdns,
                opts=child,
            )
            rest_domain = aws.apigateway.DomainName(
                f"{name}-api-domain-{region}",
                region=region,
                domain_name=self.api_domain,
                regional_certificate_arn=validated.certificate_arn,
                endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(types="REGIONAL"),
                security_policy="TLS_1_2",
                opts=child,
            )
            aws.apigateway.BasePathMapping(
                f"{name}-api-mapping-{region}",
                region=region,
                domain_name=rest_domain.domain_name,
                rest_api=endpoints.rest_api_id,
                stage_name=endpoints.rest_stage,
                opts=child,
            )
            ws_domain = aws.apigatewayv2.DomainName(
                f"{name}-ws-domain-{region}",
                region=region,
                domain_name=self.ws_domain,
                domain_name_configuration=aws.apigatewayv2.DomainNameDomainNameConfigurationArgs(
                    certificate_arn=validated.certificate_arn, endpoint_type="REGIONAL", security_policy="TLS_1_2"
                ),
                opts=child,
            )
            aws.apigatewayv2.ApiMapping(
                f"{name}-ws-mapping-{region}",
                region=region,
                api_id=endpoints.websocket_api_id,
                domain_name=ws_domain.domain_name,
                stage=endpoints.websocket_stage,
                opts=child,
            )
            checks = {}
            for host in ("api", "ws"):
                # Both records of a region watch that region's deep health route; the
                # WebSocket API has no HTTP route of its own to probe.
                checks[host] = aws.route53.HealthCheck(
                    f"{name}-{host}-health-{region}",
                    type="HTTPS",
                    fqdn=pulumi.Output.from_input(endpoints.rest_api_id).apply(
                        lambda api, region=region: naming.execute_api_host(api, region, args.partition)
                    ),
                    port=443,
                    resource_path=pulumi.Output.concat("/", endpoints.rest_stage, HEALTH_PATH),
                    request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                    failure_threshold=HEALTH_CHECK_FAILURE_THRESHOLD,
                    measure_latency=True,
                    tags={"Name": f"{host}.{domain.zone} {region}"},
                    opts=child,
                )
            self.health_check_ids[region] = checks["api"].id
            aws.route53.Record(
                f"{name}-api-record-{region}",
                zone_id=zone.zone_id,
                name=self.api_domain,
                type="A",
                set_identifier=region,
                latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=region)],
                health_check_id=checks["api"].id,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=rest_domain.regional_domain_name,
                        zone_id=rest_domain.regional_zone_id,
                        evaluate_target_health=True,
                    )
                ],
                opts=child,
            )
            aws.route53.Record(
                f"{name}-ws-record-{region}",
                zone_id=zone.zone_id,
                name=self.ws_domain,
                type="A",
                set_identifier=region,
                latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=region)],
                health_check_id=checks["ws"].id,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=ws_domain.domain_name_configuration.target_domain_name,
                        zone_id=ws_domain.domain_name_configuration.hosted_zone_id,
                        evaluate_target_health=True,
                    )
                ],
                opts=child,
            )
        self.llm_domain = f"{domain.llm_host}.{domain.zone}"
        llm_endpoint_regions = args.llm.endpoint_regions if args.llm.provider == "openai" else {}
        for url, region in sorted(llm_endpoint_regions.items()):
            host = urlparse(url).hostname
            label = host.replace(".", "-")
            check = aws.route53.HealthCheck(
                f"{name}-llm-health-{label}",
                type="HTTPS",
                fqdn=host,
                port=443,
                resource_path=args.llm.health_path,
                request_interval=30,
                failure_threshold=3,
                tags={"Name": f"{self.llm_domain} {host}"},
                opts=child,
            )
            aws.route53.Record(
                f"{name}-llm-record-{label}",
                zone_id=zone.zone_id,
                name=self.llm_domain,
                type="CNAME",
                ttl=60,
                records=[host],
                set_identifier=f"{region}-{label}"[:128],
                latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=region)],
                health_check_id=check.id,
                opts=child,
            )
        self.register_outputs({"apiDomain": self.api_domain, "wsDomain": self.ws_domain})
