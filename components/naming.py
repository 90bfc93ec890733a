"""Names fixed by convention, so one region's resources can name another's before they exist."""

from __future__ import annotations


def state_machine_name(stack: str, kind: str) -> str:
    """``agent-infra-<stack>-turn`` / ``-task``: the same name in every region."""
    return f"agent-infra-{stack}-{kind}"


def state_machine_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:states:{region}:{account_id}:stateMachine:{name}"


def executions_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """Every execution of the state machine ``name`` in ``region``."""
    return f"arn:{partition}:states:{region}:{account_id}:execution:{name}:*"


def table_arn(partition: str, region: str, account_id: str, table_name: str) -> str:
    """The table's replica in ``region`` (a global table has the same name everywhere)."""
    return f"arn:{partition}:dynamodb:{region}:{account_id}:table/{table_name}"


def log_group_prefixes(stack: str) -> list[str]:
    """Name prefixes of every log group of the stack: the functions' and the APIs' access
    logs under ``/agent-infra/<stack>/``, the state machines' under
    ``/aws/vendedlogs/states/agent-infra-<stack>-``. The region's key may encrypt these only."""
    return [f"/agent-infra/{stack}/", f"/aws/vendedlogs/states/{state_machine_name(stack, '')}"]


def role_path(stack: str) -> str:
    """IAM path of every role of the stack (set on each role by ``__main__.py``): the
    pipeline's deploy role may manage roles under this path only (``bootstrap/roles.py``)."""
    return f"/agent-infra/{stack}/"


def boundary_arn(partition: str, account_id: str, stack: str) -> str:
    """The permissions boundary every role of the stack is created with; the bootstrap
    program (``bootstrap/``) creates it, and the deploy role may create roles only with it."""
    return f"arn:{partition}:iam::{account_id}:policy/agent-infra-{stack}-boundary"
