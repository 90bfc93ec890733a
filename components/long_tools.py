"""Long tools, per region: where the ``fargate-spot`` tools' container tasks run.

One ECS cluster whose capacity providers are FARGATE_SPOT and FARGATE (the task machine
picks one per run: Spot first, on-demand Fargate for the last attempt), one arm64 task
definition per ``fargate-spot`` tool, the image every one of them runs (this repository's
``Dockerfile``, built and pushed to the region's ECR repository by ``pulumi-docker-build``),
and the network the tasks run in.

The network is a small VPC the program creates (docs/long-tools.md): two
public subnets in two availability zones, an internet gateway and no NAT gateway; a task gets
a public IP and a security group that lets nothing in and HTTPS out; DynamoDB is reached
through a gateway endpoint whose policy admits only this stack's table. A new account can
deploy it whether or not it still has a default VPC.

Roles: an execution role per region (ECS pulls the image and writes the task's logs with it)
and a task role per tool (what the tool's code may do: the table actions it needs, nothing
else). The state machine passes both when it runs a task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components import naming, policies
from components.config import ObservabilityConfig, StateConfig, ToolConfig
from components.context import RegionContext

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
CONTAINER_NAME = "tool"
# ECS sends SIGTERM, then SIGKILL after the container's stopTimeout, at most 120 s on Fargate
# ("stopTimeout ... Max value 120 seconds",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_timeout);
# Fargate Spot gives the same two-minute warning before it reclaims a task
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html).
STOP_TIMEOUT_SECONDS = 120
CAPACITY_PROVIDERS = ("FARGATE_SPOT", "FARGATE")
VPC_CIDR = "10.40.0.0/24"
SUBNET_CIDRS = ("10.40.0.0/25", "10.40.0.128/25")
HTTPS = 443
IMAGES_KEPT = 10
# What the image is built from: the entrypoint and every handler it may import.
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "handlers")
# The task role's table actions for every long tool: read its run's record and checkpoint,
# write the result, the checkpoint and each work item (one conditional PutItem per item),
# and list the items a run already did (Query on the run's key).
LONG_TOOL_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")


def image_tag(root: Path = ROOT) -> str:
    """The image's tag: a digest of what goes into it. Tags are immutable in the repository,
    so a change of code is a new tag (and a new push); the same code, the same tag (no push)."""
    digest = hashlib.sha256()
    for name in IMAGE_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc" or not file.exists():
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def log_group_name(stack: str, tool: str) -> str:
    """Under ``/agent-infra/<stack>/``: the region's key may encrypt it, the deploy role may create it."""
    return naming.function_log_group(stack, f"longrun-{tool.replace('_', '-')}")


@dataclass(frozen=True, kw_only=True)
class LongToolsArgs:
    """Inputs of :class:`LongTools`."""

    context: RegionContext
    stack_regions: Sequence[str]
    tools: Sequence[ToolConfig]
    """The ``fargate-spot`` tools (at least one)."""
    tool_dynamodb_actions: Mapping[str, Sequence[str]]
    """Extra DynamoDB actions each tool declares (its module's ``TOOL.dynamodb_actions``)."""
    table_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The region's key: the tasks' log groups are encrypted with it."""
    state: StateConfig
    observability: ObservabilityConfig


class LongTools(pulumi.ComponentResource):
    """The cluster, network, image, roles and task definitions of one region's long tools."""

    cluster_arn: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    task_role_arns: dict[str, pulumi.Output[str]]
    """Each tool's task role, by tool name."""
    task_definition_arns: dict[str, pulumi.Output[str]]
    """Each tool's task definition (with its revision), by tool name."""

    def __init__(self, name: str, args: LongToolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:long-tools:LongTools", name, None, opts)
        if not args.tools or any(t.runtime != "fargate-spot" for t in args.tools):
            raise ValueError("LongTools runs fargate-spot tools only, and at least one")
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        context = args.context
        self._table_arn = pulumi.Output.all(account=context.account_id, table=args.table_name).apply(
            lambda v: naming.table_arn(context.partition, context.region, v["account"], v["table"])
        )
        self._assume = pulumi.Output.from_input(context.account_id).apply(
            lambda account: json.dumps(policies.assume_role_policy("ecs-tasks.amazonaws.com", account))
        )
        cluster = self._cluster()
        self._network()
        repository, image_ref, image = self._image()
        log_groups = {tool.name: self._log_group(tool) for tool in args.tools}
        execution_role = self._execution_role(repository, list(log_groups.values()))
        self.task_role_arns = {}
        self.task_definition_arns = {}
        for tool in args.tools:
            task_role = self._task_role(tool)
            definition = self._task_definition(tool, image_ref, image, log_groups[tool.name], execution_role, task_role)
            self.task_role_arns[tool.name] = task_role.arn
            self.task_definition_arns[tool.name] = definition.arn
        self.cluster_arn = cluster.arn
        self.execution_role_arn = execution_role.arn
        self.register_outputs(
            {
                "clusterArn": self.cluster_arn,
                "subnetIds": self.subnet_ids,
                "securityGroupId": self.security_group_id,
                "taskDefinitionArns": self.task_definition_arns,
            }
        )

    # -- the cluster --------------------------------------------------------------------------

    def _cluster(self) -> aws.ecs.Cluster:
        context = self._args.context
        cluster = aws.ecs.Cluster(
            f"{self._name}-cluster",
            region=context.region,
            name=naming.tools_cluster_name(context.stack),
            # Off: each run's history is in Step Functions and its output in its log group;
            # Container Insights would bill its metrics per cluster and task family
            # (docs/security.md, "Scanner findings that are intentional").
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="disabled")],
            opts=self._child,
        )
        # Both Fargate providers on the cluster; a run names its own strategy (the task
        # machine: Spot, then on-demand for the last attempt), the default is Spot
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html).
        aws.ecs.ClusterCapacityProviders(
            f"{self._name}-capacity",
            region=context.region,
            cluster_name=cluster.name,
            capacity_providers=list(CAPACITY_PROVIDERS),
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider="FARGATE_SPOT", weight=1, base=0
                )
            ],
            opts=self._child,
        )
        return cluster

    # -- the network --------------------------------------------------------------------------

    def _network(self) -> None:
        """Public subnets and no NAT: a NAT gateway bills by the hour in every region whether
        tasks run or not (docs/long-tools.md); a task with a public IP reaches
        ECR, CloudWatch Logs and the web through the internet gateway, and nothing reaches it
        (the security group has no inbound rule, ``awsvpc`` tasks accept nothing else)."""
        args, child = self._args, self._child
        region = args.context.region
        vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            region=region,
            cidr_block=VPC_CIDR,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": naming.stack_resource_name(args.context.stack, "tools")},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{self._name}-igw", region=region, vpc_id=vpc.id, opts=child)
        routes = aws.ec2.RouteTable(
            f"{self._name}-routes",
            region=region,
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            opts=child,
        )
        zones = aws.get_availability_zones_output(
            region=region, state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.subnet_ids = []
        for index, cidr in enumerate(SUBNET_CIDRS):
            subnet = aws.ec2.Subnet(
                f"{self._name}-subnet-{index}",
                region=region,
                vpc_id=vpc.id,
                cidr_block=cidr,
                # Two zones: Spot capacity is per zone, and ECS places a task in any subnet given.
                availability_zone=zones.names.apply(lambda names, i=index: names[i % len(names)]),
                # The task asks for its public IP (assignPublicIp); nothing else gets one.
                map_public_ip_on_launch=False,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{self._name}-subnet-{index}-routes",
                region=region,
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=child,
            )
            self.subnet_ids.append(subnet.id)
        group = aws.ec2.SecurityGroup(
            f"{self._name}-tasks",
            region=region,
            vpc_id=vpc.id,
            description="agent-infra long tool tasks: nothing in, HTTPS out",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="HTTPS: AWS APIs, ECR, the web pages a tool fetches",
                    protocol="tcp",
                    from_port=HTTPS,
                    to_port=HTTPS,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            opts=child,
        )
        self.security_group_id = group.id
        # DynamoDB through a gateway endpoint: free, and the endpoint's policy admits only this
        # region's replica of the stack's table and the actions the tasks use
        # (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-ddb.html).
        actions = sorted(
            {*LONG_TOOL_TABLE_ACTIONS, *(a for t in args.tools for a in args.tool_dynamodb_actions.get(t.name, ()))}
        )
        aws.ec2.VpcEndpoint(
            f"{self._name}-dynamodb",
            region=region,
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.dynamodb",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            policy=self._table_arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "StackTableOnly",
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": actions,
                                "Resource": [arn, f"{arn}/index/*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )

    # -- the image ----------------------------------------------------------------------------

    def _image(self) -> tuple[aws.ecr.Repository, pulumi.Output[str], docker_build.Image]:
        """The region's repository and the image pushed to it.

        ``pulumi-docker-build`` (https://www.pulumi.com/registry/packages/docker-build/) builds
        with BuildKit for linux/arm64 and pushes with the registry credentials of
        ``aws.ecr.get_authorization_token_output``. A preview never pushes: "Images built during
        previews are never exported to registries"; with ``build_on_preview`` off it does not
        build either, so a pull request's preview needs no Docker daemon and no push grant
        (https://www.pulumi.com/registry/packages/docker-build/api-docs/image/#buildonpreview_python).
        """
        context, child = self._args.context, self._child
        repository = aws.ecr.Repository(
            f"{self._name}-images",
            region=context.region,
            name=naming.stack_resource_name(context.stack, "tools"),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            # KMS with ECR's AWS-managed key: the image holds code, no user data; the region's
            # own key is kept for what its policy names (docs/long-tools.md).
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            # Images are build output, rebuilt from the repository: teardown deletes them.
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-images-lifecycle",
            region=context.region,
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {IMAGES_KEPT} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": IMAGES_KEPT,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            region=context.region, registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        tag = image_tag()
        image_ref = repository.repository_url.apply(lambda url: f"{url}:{tag}")
        image = docker_build.Image(
            f"{self._name}-image",
            context=docker_build.BuildContextArgs(location=str(ROOT)),
            dockerfile=docker_build.DockerfileArgs(location=str(DOCKERFILE)),
            platforms=[docker_build.Platform.LINUX_ARM64],
            tags=[image_ref],
            push=True,
            build_on_preview=False,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url.apply(lambda url: url.split("/", 1)[0]),
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
            opts=child,
        )
        return repository, image_ref, image

    # -- roles, logs and task definitions -------------------------------------------------------

    def _log_group(self, tool: ToolConfig) -> aws.cloudwatch.LogGroup:
        args = self._args
        return aws.cloudwatch.LogGroup(
            f"{self._name}-{tool.name}-logs",
            region=args.context.region,
            name=log_group_name(args.context.stack, tool.name),
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=self._child,
        )

    def _execution_role(
        self, repository: aws.ecr.Repository, log_groups: Sequence[aws.cloudwatch.LogGroup]
    ) -> aws.iam.Role:
        """What ECS does for a task: pull the image from this repository and write its logs
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html)."""
        context = self._args.context
        role = aws.iam.Role(
            f"{self._name}-execution-role",
            description=f"agent-infra {context.stack} long tools' task execution in {context.region}",
            assume_role_policy=self._assume,
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{self._name}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(repository=repository.arn, groups=[g.arn for g in log_groups]).apply(
                lambda v: json.dumps(policies.task_execution_policy(v["repository"], v["groups"]))
            ),
            opts=self._child,
        )
        return role

    def _task_role(self, tool: ToolConfig) -> aws.iam.Role:
        """What the tool's code may do: the table actions every long tool needs and those its
        module declares, on this region's replica (a run stays in its machine's region)."""
        args, context = self._args, self._args.context
        role = aws.iam.Role(
            f"{self._name}-{tool.name}-role",
            description=f"agent-infra {context.stack} long tool {tool.name} in {context.region}",
            assume_role_policy=self._assume,
            opts=self._child,
        )
        actions = sorted({*LONG_TOOL_TABLE_ACTIONS, *args.tool_dynamodb_actions.get(tool.name, ())})
        aws.iam.RolePolicy(
            f"{self._name}-{tool.name}-policy",
            role=role.id,
            policy=self._table_arn.apply(lambda arn: json.dumps(policies.policy(*policies.table_access(arn, actions)))),
            opts=self._child,
        )
        return role

    def _task_definition(
        self,
        tool: ToolConfig,
        image_ref: pulumi.Output[str],
        image: docker_build.Image,
        log_group: aws.cloudwatch.LogGroup,
        execution_role: aws.iam.Role,
        task_role: aws.iam.Role,
    ) -> aws.ecs.TaskDefinition:
        args, context = self._args, self._args.context
        environment = pulumi.Output.all(table=args.table_name, image=image_ref, logs=log_group.name).apply(
            lambda v: json.dumps(
                [
                    {
                        "name": CONTAINER_NAME,
                        "image": v["image"],
                        "essential": True,
                        "stopTimeout": STOP_TIMEOUT_SECONDS,
                        "readonlyRootFilesystem": True,
                        # The static environment of a tool Lambda, plus the tool's name; each
                        # run adds TOOL_EVENT as a container override.
                        "environment": [
                            {"name": key, "value": value}
                            for key, value in sorted(
                                {
                                    "TABLE_NAME": v["table"],
                                    "TTL_DAYS": str(args.state.ttl_days),
                                    "TABLE_REGIONS": json.dumps(list(args.stack_regions)),
                                    "EVACUATED_REGIONS": json.dumps(list(args.state.evacuated_regions)),
                                    "AWS_REGION": context.region,
                                    "TOOL_NAME": tool.name,
                                }.items()
                            )
                        ],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": v["logs"],
                                "awslogs-region": context.region,
                                "awslogs-stream-prefix": CONTAINER_NAME,
                            },
                        },
                    }
                ]
            )
        )
        return aws.ecs.TaskDefinition(
            f"{self._name}-{tool.name}-task",
            region=context.region,
            family=naming.task_family(context.stack, tool.name),
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(tool.cpu),
            memory=str(tool.memory_mb),
            # Graviton: FARGATE_SPOT "supports Linux tasks with the ARM64 architecture on platform
            # version 1.4.0 or later" (LATEST is 1.4.0;
            # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CapacityProviderStrategyItem.html).
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="ARM64"
            ),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=environment,
            # The image is pushed before a task definition names it.
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=[image])),
        )
