"""The compensation handler on its own: reverse order, only what succeeded, never twice."""

from __future__ import annotations

from handlers.compensate import Compensator
from handlers.tools import load_tool
from handlers.tools.create_ticket import TicketInput, TicketStore, run
from tests.test_tools import context


def test_compensation_undoes_succeeded_compensable_steps_newest_first_and_only_once(store):
    created = []
    for seq in (100, 200, 300):
        ctx = context(store, seq=seq)
        output = run(ctx, TicketInput(title=f"ticket {seq}"))
        store.tool_runs.record(
            "exec-1", seq, "create_ticket", status="SUCCEEDED", input={}, output=output, compensable=True
        )
        created.append(output["ticketId"])
    store.tool_runs.record("exec-1", 150, "calculator", status="SUCCEEDED", input={}, output=1)
    store.tool_runs.record("exec-1", 250, "create_ticket", status="FAILED", input={}, output={"error": "x"})
    event = {
        "executionId": "exec-1",
        "userId": "alice",
        "sessionId": "s1",
        "failure": {"Error": "RuntimeError", "Cause": "boom"},
    }

    first = Compensator(store).handle(event)
    assert [(c["seq"], c["detail"]["ticketId"]) for c in first["compensated"]] == [
        (300, created[2]),
        (200, created[1]),
        (100, created[0]),
    ]
    assert all(TicketStore(store.table).get(t) is None for t in created)
    statuses = {r.seq: r.status for r in store.tool_runs.list("exec-1")}
    assert statuses == {100: "COMPENSATED", 150: "SUCCEEDED", 200: "COMPENSATED", 250: "FAILED", 300: "COMPENSATED"}

    second = Compensator(store).handle(event)
    assert second["compensated"] == [], "nothing is undone twice"
    assert load_tool("create_ticket").compensate is not None
