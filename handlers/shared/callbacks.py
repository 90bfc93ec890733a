"""A decision's callback: SendTaskSuccess or SendTaskFailure to the execution's own region.

The token of a ``.waitForTaskToken`` step is answered through the Step Functions API
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html), of
the region the execution runs in (executions are regional resources). When that region cannot
be reached, the decision stays on record, undelivered, and the next reader of the approval
(the approval route again, or the task's status route) delivers it: the execution, a Standard
one, waits until its approval times out.

The API answers ``TaskTimedOut``, ``TaskDoesNotExist`` or ``InvalidToken`` for a token no
execution waits on. Before the approval's timeout, with one decision per approval (the store
takes one), that means the decision already went through (an earlier delivery whose record
was not updated) or the execution stopped: either way there is nothing left to deliver.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from handlers.shared.store import Approval, ReplicaUnavailableError, Store

APPROVAL_DENIED = "ApprovalDenied"
TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}

Delivery = Literal["delivered", "pending", "expired"]


def deliver_decision(store: Store, stepfunctions: Callable[[str], Any], approval: Approval, now_s: float) -> Delivery:
    """Send ``approval``'s decision to its execution and record that it went: ``delivered``,
    ``pending`` (the execution's region or its API could not take it now), or ``expired``."""
    if approval.decision is None:
        raise ValueError(f"approval {approval.approval_id} is not decided")
    sfn = stepfunctions(approval.region)
    try:
        if approval.decision == "approve":
            sfn.send_task_success(
                taskToken=approval.task_token,
                output=json.dumps(
                    {"decision": "approve", "decidedBy": approval.decided_by, "comment": approval.comment}
                ),
            )
        else:
            sfn.send_task_failure(
                taskToken=approval.task_token, error=APPROVAL_DENIED, cause=approval.comment or "denied"
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in TOKEN_GONE:
            return "pending"
        if approval.expires_at <= now_s:
            store.approvals.mark_expired(approval)
            return "expired"
    except BotoCoreError:  # no connection to the region, no answer in time
        return "pending"
    # The decision went through; if its record cannot say so now, a later delivery finds the
    # token gone before the timeout and stops there.
    with contextlib.suppress(ReplicaUnavailableError, ClientError):
        store.approvals.mark_delivered(approval)
    return "delivered"
