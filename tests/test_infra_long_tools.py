"""Long tools under the mocks: a stack with a fargate-spot and a continuation tool (tests/long_tools.py)."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from components.config import StackConfigError, parse_stack_config
from components.long_tools import CONTAINER_NAME, STOP_TIMEOUT_SECONDS, image_tag
from local.pulumi_mocks import ACCOUNT_ID, AwsMocks, run_program
from tests.long_tools import declared_as, example_tools, long_tools_config

ROOT = Path(__file__).resolve().parent.parent
TOOLS = example_tools()
LONG, SLICED = TOOLS["fargate-spot"], TOOLS["continuation"]
REGION = "us-east-1"
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


@pytest.fixture(scope="module")
def run():
    with declared_as(TOOLS):
        return run_program(long_tools_config(), "dev", AwsMocks())


def _in(run, typ: str, region: str = REGION) -> list:
    return [r for r in run.of_type(typ) if r.state.get("region") == region]


def _policy(run, fragment: str) -> list[dict]:
    (found,) = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if fragment in p.name]
    return json.loads(found.inputs["policy"])["Statement"]


def _allowed(statements: list[dict], action: str, resource: str) -> bool:
    return any(
        any(fnmatchcase(action, a) for a in s["Action"]) and any(fnmatchcase(resource, r) for r in s["Resource"])
        for s in statements
    )


def test_each_region_has_a_cluster_with_fargate_spot_first_and_fargate(run):
    for region in long_tools_config()["agent-infra:regions"]:
        (cluster,) = _in(run, "aws:ecs/cluster:Cluster", region)
        (providers,) = _in(run, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", region)
        assert providers.inputs["clusterName"] == cluster.inputs["name"]
        assert providers.inputs["capacityProviders"] == ["FARGATE_SPOT", "FARGATE"]
        assert [s["capacityProvider"] for s in providers.inputs["defaultCapacityProviderStrategies"]] == [
            "FARGATE_SPOT"
        ]


def test_the_task_definition_is_arm64_with_the_stop_timeout_roles_and_encrypted_logs(run):
    (definition,) = _in(run, "aws:ecs/taskDefinition:TaskDefinition")
    inputs = definition.inputs
    assert inputs["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}
    assert (inputs["cpu"], inputs["memory"]) == ("1024", "2048")
    assert inputs["requiresCompatibilities"] == ["FARGATE"] and inputs["networkMode"] == "awsvpc"
    roles = {r.state["arn"]: r for r in run.of_type("aws:iam/role:Role")}
    execution, task = roles[inputs["executionRoleArn"]], roles[inputs["taskRoleArn"]]
    for role in (execution, task):
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    (container,) = json.loads(inputs["containerDefinitions"])
    assert container["name"] == CONTAINER_NAME and container["stopTimeout"] == STOP_TIMEOUT_SECONDS == 120
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["TOOL_NAME"] == LONG and environment["AWS_REGION"] == REGION
    assert {"TABLE_NAME", "TTL_DAYS", "TABLE_REGIONS"} <= environment.keys()
    assert "TOOL_EVENT" not in environment, "each run passes its event as an override"
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs" and logs["options"]["awslogs-region"] == REGION
    (group,) = [
        g for g in _in(run, "aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"] == logs["options"]["awslogs-group"]
    ]
    (key,) = [k for k in run.of_type("aws:kms/key:Key") if k.state.get("region") == REGION]
    assert group.inputs["kmsKeyId"] == key.state["arn"]


def test_the_image_is_built_for_arm64_from_the_dockerfile_and_pushed_only_on_update(run):
    (repository,) = _in(run, "aws:ecr/repository:Repository")
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
    (lifecycle,) = _in(run, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert json.loads(lifecycle.inputs["policy"])["rules"][0]["action"] == {"type": "expire"}
    images = run.of_type("docker-build:index:Image")
    url = repository.state["repositoryUrl"]
    (image,) = [i for i in images if i.inputs["tags"][0].startswith(url)]
    assert image.inputs["tags"] == [f"{url}:{image_tag()}"]
    assert image.inputs["platforms"] == ["linux/arm64"]
    assert image.inputs["dockerfile"]["location"] == str(ROOT / "Dockerfile")
    assert image.inputs["push"] is True and image.inputs["buildOnPreview"] is False
    # The registries hold the token's password: Pulumi keeps them as a secret (its signature key).
    registries = image.inputs["registries"]
    assert registries.get(SECRET_SIGNATURE) == "1b47061264138c4ac30d75fd1eb44270"
    (registry,) = registries["value"]
    assert registry["address"] == url.split("/")[0] and registry["username"] == "AWS"
    (definition,) = _in(run, "aws:ecs/taskDefinition:TaskDefinition")
    assert json.loads(definition.inputs["containerDefinitions"])[0]["image"] == image.inputs["tags"][0]
    assert image.name in run.depends_on[definition.name], "the task definition waits for the push"
    assert len(images) == 2, "one image per region, each pushed to its region's repository"


def test_the_dockerfile_runs_the_entrypoint_as_a_user_on_python_slim_with_the_pinned_boto3():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert 'ENTRYPOINT ["python", "-m", "handlers.longrun"]' in dockerfile
    assert re.search(r"^USER \d+", dockerfile, re.M)
    pinned = re.search(r"^boto3==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"boto3=={pinned}" in dockerfile


def test_the_network_is_public_subnets_no_nat_a_closed_security_group_and_a_dynamodb_endpoint(run):
    subnets = _in(run, "aws:ec2/subnet:Subnet")
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 2
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    assert not _in(run, "aws:ec2/natGateway:NatGateway")
    (routes,) = _in(run, "aws:ec2/routeTable:RouteTable")
    (gateway,) = _in(run, "aws:ec2/internetGateway:InternetGateway")
    assert routes.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": gateway.resource_id}]
    (group,) = _in(run, "aws:ec2/securityGroup:SecurityGroup")
    assert not group.inputs.get("ingress")
    assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in group.inputs["egress"]] == [("tcp", 443, 443)]
    (endpoint,) = _in(run, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{REGION}.dynamodb"
    (statement,) = json.loads(endpoint.inputs["policy"])["Statement"]
    assert all(r.startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/") for r in statement["Resource"])
    assert "dynamodb:*" not in statement["Action"] and "dynamodb:DeleteTable" not in statement["Action"]


def test_the_task_role_reaches_only_the_regions_table_and_the_execution_role_only_its_image_and_logs(run):
    task = _policy(run, f"us-east-1-long-tools-{LONG}-policy")
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/"
    assert all(r.startswith(table) for s in task for r in s["Resource"])
    assert {a for s in task for a in s["Action"]} >= {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert not _allowed(task, "dynamodb:DeleteTable", f"{table}x") and not _allowed(task, "ecr:BatchGetImage", "*")
    execution = _policy(run, "us-east-1-long-tools-execution-policy")
    (repository,) = _in(run, "aws:ecr/repository:Repository")
    assert _allowed(execution, "ecr:BatchGetImage", repository.state["arn"])
    assert not _allowed(execution, "ecr:BatchGetImage", repository.state["arn"].replace("tools", "other"))
    assert not _allowed(execution, "ecr:PutImage", repository.state["arn"])
    assert not _allowed(execution, "dynamodb:GetItem", f"{table}x")


def test_the_task_machine_may_run_exactly_its_task_definitions_and_pass_exactly_their_roles(run):
    statements = _policy(run, "us-east-1-orchestration-task-policy")
    (definition,) = _in(run, "aws:ecs/taskDefinition:TaskDefinition")
    (cluster,) = _in(run, "aws:ecs/cluster:Cluster")
    (run_task,) = [s for s in statements if "ecs:RunTask" in s["Action"]]
    assert run_task["Resource"] == [definition.state["arn"]]
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": cluster.state["arn"]}}
    assert _allowed(statements, "ecs:StopTask", f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/agent-infra-dev-tools/abc")
    assert not _allowed(statements, "ecs:StopTask", f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/other/abc")
    rule = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/StepFunctionsGetEventsForECSTaskRule"
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert _allowed(statements, action, rule)
    (pass_role,) = [s for s in statements if "iam:PassRole" in s["Action"]]
    assert sorted(pass_role["Resource"]) == sorted(
        [definition.inputs["executionRoleArn"], definition.inputs["taskRoleArn"]]
    )
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    turn = _policy(run, "us-east-1-orchestration-turn-policy")
    assert not any(a.startswith(("ecs:", "iam:")) for s in turn for a in s["Action"]), "the turn runs no task"


def test_the_long_tool_gets_no_lambda_and_the_continuation_tool_keeps_its_lambda(run):
    functions = {f.name for f in _in(run, "aws:lambda/function:Function")}
    assert f"us-east-1-compute-tool-{SLICED.replace('_', '-')}" in functions
    assert f"us-east-1-compute-tool-{LONG.replace('_', '-')}" not in functions


def test_a_stack_without_long_tools_creates_none_of_it():
    from local.pulumi_mocks import stack_config

    plain = run_program(stack_config("prod"), "prod")  # prod has no long tool
    assert not [r for r in plain.resources if r.typ.startswith(("aws:ecs/", "aws:ecr/", "aws:ec2/", "docker-build:"))]
    assert "longToolClusterArns" not in plain.outputs


# -- the config -------------------------------------------------------------------------------


def _raw(tool: dict) -> dict:
    config = {k.split(":", 1)[1]: v for k, v in long_tools_config().items() if k.startswith("agent-infra:")}
    config["tools"] = [tool]
    return config


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        (
            1024,
            1024,
            "memoryMb 1024 does not pair with cpu 1024 on Fargate; with cpu 1024 memoryMb is one of 2048..8192",
        ),
        (
            256,
            4096,
            "memoryMb 4096 does not pair with cpu 256 on Fargate; with cpu 256 memoryMb is one of 512, 1024, 2048",
        ),
        (
            8192,
            18432,
            "does not pair with cpu 8192 on Fargate; with cpu 8192 memoryMb is one of 16384..61440 in steps of 4096",
        ),
        (3000, 4096, "cpu 3000 is not a Fargate task size"),
        (None, 2048, "runtime 'fargate-spot' needs cpu"),
    ],
)
def test_the_config_refuses_a_cpu_and_memory_pair_fargate_refuses(cpu, memory, message):
    tool = {"name": LONG, "runtime": "fargate-spot", "cpu": cpu, "memoryMb": memory}
    with declared_as(TOOLS), pytest.raises(StackConfigError, match=re.escape(message)):
        parse_stack_config(_raw(tool))


@pytest.mark.parametrize(("cpu", "memory"), [(256, 512), (4096, 30720), (16384, 122880), (2048, 5120)])
def test_the_config_accepts_the_pairs_fargate_accepts(cpu, memory):
    with declared_as(TOOLS):
        parse_stack_config(_raw({"name": LONG, "runtime": "fargate-spot", "cpu": cpu, "memoryMb": memory}))


def test_a_lambda_tool_keeps_lambdas_memory_limit():
    with pytest.raises(StackConfigError, match="memoryMb 20480 is over Lambda's 10240 MB"):
        parse_stack_config(_raw({"name": "calculator", "memoryMb": 20480}))


def test_the_config_refuses_a_runtime_the_module_does_not_declare():
    with pytest.raises(
        StackConfigError, match=r"calculator has runtime 'fargate-spot' but handlers/tools/calculator\.py declares none"
    ):
        parse_stack_config(_raw({"name": "calculator", "runtime": "fargate-spot", "cpu": 256, "memoryMb": 512}))
    with (
        declared_as(TOOLS),
        pytest.raises(StackConfigError, match=f"{LONG} has runtime 'lambda' but .* declares 'fargate-spot'"),
    ):
        parse_stack_config(_raw({"name": LONG}))


def test_the_declared_runtime_is_read_from_the_source_without_importing_it(tmp_path, monkeypatch):
    from components.config import tools as config

    folder = tmp_path / "handlers" / "tools"
    folder.mkdir(parents=True)
    (folder / "a.py").write_text('RUNTIME = "continuation"\nimport not_a_module\n')
    (folder / "b.py").write_text('TOOL = ToolDefinition(name="b", runtime="fargate-spot")\n')
    (folder / "c.py").write_text("TOOL = ToolDefinition(name='c')\n")
    (folder / "d.py").write_text("def broken(:\n")
    monkeypatch.setattr(config, "__file__", str(tmp_path / "components" / "config" / "tools.py"))
    assert [config.declared_runtime(m) for m in "abcd"] == ["continuation", "fargate-spot", None, None]


def _states(definition: dict) -> dict:
    """Every state of a definition, Map item processors included, by name."""
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for inner in ("ItemProcessor", "Iterator"):
            if inner in state:
                found.update(_states(state[inner]))
    return found


def test_the_deployed_task_machine_runs_the_container_tool_with_runtask_sync_and_loops_the_sliced_one(run):
    """The task machine the program deploys, read from its definition: the fargate-spot tool
    runs on the region's cluster and task definition (Spot, then on-demand), the continuation
    tool's Lambda is invoked in a loop; the turn machine runs neither."""
    for region in long_tools_config()["agent-infra:regions"]:
        machines = {
            m.inputs["name"]: json.loads(m.inputs["definition"])
            for m in _in(run, "aws:sfn/stateMachine:StateMachine", region)
        }
        (task,) = [d for n, d in machines.items() if n.endswith("-task")]
        (turn,) = [d for n, d in machines.items() if n.endswith("-turn")]
        (cluster,) = _in(run, "aws:ecs/cluster:Cluster", region)
        (definition,) = _in(run, "aws:ecs/taskDefinition:TaskDefinition", region)
        runs = [s for s in _states(task).values() if s.get("Resource", "").endswith(":states:::ecs:runTask.sync")]
        assert len(runs) == 2, "one run on Spot, one on demand"
        providers = sorted(s["Parameters"]["CapacityProviderStrategy"][0]["CapacityProvider"] for s in runs)
        assert providers == ["FARGATE", "FARGATE_SPOT"]
        for state in runs:
            assert state["Parameters"]["Cluster"] == cluster.state["arn"]
            assert state["Parameters"]["TaskDefinition"] == definition.state["arn"]
        sliced = [n for n in _states(task) if SLICED in n and "Slice" in n]
        assert sliced, f"no slice loop for {SLICED}"
        assert not any(s.get("Resource", "").endswith("runTask.sync") for s in _states(turn).values())


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"runtime": "fargate-spot", "cpu": 256, "memoryMb": 512, "compensable": True}, "has no compensation"),
        ({"runtime": "continuation", "requiresApproval": True}, "requiresApproval is for runtime 'lambda'"),
        ({"runtime": "fargate-spot", "cpu": 256, "memoryMb": 512, "requiresApproval": True}, "approval step"),
        ({"runtime": "continuation", "timeoutSeconds": 901}, "over Lambda's 900 s"),
    ],
)
def test_the_config_refuses_what_a_long_tool_cannot_do(tool, message):
    name = LONG if tool["runtime"] == "fargate-spot" else SLICED
    with declared_as(TOOLS), pytest.raises(StackConfigError, match=re.escape(message)):
        parse_stack_config(_raw({"name": name, **tool}))
