"""The store across regions: two moto regions joined as a global table, last writer wins.

Every write of the store must be safe when replicas copy each other late and a condition is
checked in one replica only. These tests run the store's own writes (the turn's step with its
session and Idempotency-Key claim in one transaction, approvals' decisions, REST claims) from
two regions, with replication in every order they can be interleaved with, and then check
that nothing was replaced: each write that said it succeeded is in every replica as written,
every replica holds the same items, and each failure was said.
"""

from __future__ import annotations

import itertools

import pytest

from handlers.shared import table as keys
from handlers.shared.store import (
    ConflictError,
    DuplicateRequestError,
    NewMessage,
    ReplicaUnavailableError,
    Store,
    rendezvous_order,
)
from handlers.shared.store.conversations import HOME_MOVE_SKIP
from tests.regions import A, B, C, TwoRegions, global_table

USER = "alice"


def turn(text: str) -> list[NewMessage]:
    return [NewMessage(role="user", text=text), NewMessage(role="assistant", text=f"answer to {text}")]


def load(store: Store, session_id: str):
    """A read as the turn's prepare does it: once more when the home could not be reached."""
    try:
        return store.conversations.load(session_id, limit=50)
    except ReplicaUnavailableError:
        return store.conversations.load(session_id, limit=50)


def write_turn(store: Store, session_id: str, page, text: str, claim: str | None, turn_id: str):
    return store.conversations.append_step(
        session_id,
        page.next_seq(),
        turn(text),
        turn_id=turn_id,
        user_id=USER,
        new_session=page.meta is None,
        touch=page.meta is not None,
        claim_key=claim,
        replica=page.replica,
    )


def step_items(regions: TwoRegions, region: str, session_id: str) -> dict[str, dict]:
    pk = keys.session_pk(session_id)
    return {k[1]: v for k, v in regions.table.items(region).items() if k[0] == pk and k[1].startswith("MSG#")}


def session_with_home(home: str, regions=(A, B), prefix: str = "s") -> str:
    """A session id whose home (first in its rendezvous order) is ``home``."""
    for n in itertools.count():
        session_id = f"{prefix}{n}"
        if rendezvous_order(keys.session_pk(session_id), regions)[0] == home:
            return session_id
    raise AssertionError("unreachable")


def test_every_region_finds_the_same_home_and_the_same_next_one():
    with global_table(A, B, C) as regions:
        stores = [regions.store(r) for r in (A, B, C)]
        for n in range(50):
            pk = keys.session_pk(f"s{n}")
            assert len({s.table.replicas.home(pk) for s in stores}) == 1
            order = stores[0].table.replicas.order(pk)
            evacuated = regions.store(A, evacuated=[order[0]])
            assert evacuated.table.replicas.home(pk) == order[1]
        homes = {stores[0].table.replicas.home(keys.session_pk(f"s{n}")) for n in range(60)}
        assert homes == {A, B, C}, "sessions spread over every region"


def test_a_session_written_through_two_regions_is_one_conversation_in_its_home():
    with global_table() as regions:
        in_a, in_b = regions.store(A), regions.store(B)
        session_id = session_with_home(A)
        for n, store in enumerate([in_a, in_b, in_b, in_a, in_b]):
            page = load(store, session_id)
            write_turn(store, session_id, page, f"m{n}", None, f"t{n}")
        regions.settle()
        assert regions.table.differences() == []
        texts = [m.text for m in reversed(load(in_b, session_id).messages) if m.role == "user"]
        assert texts == ["m0", "m1", "m2", "m3", "m4"], "the order they were sent, read in either region"
        assert set(step_items(regions, B, session_id)) == {f"MSG#{n:08d}#{A}" for n in range(1, 6)}


def test_two_regions_that_read_the_same_position_in_the_home_conflict_instead_of_overwriting():
    with global_table() as regions:
        in_a, in_b = regions.store(A), regions.store(B)
        session_id = session_with_home(A)
        first, second = load(in_a, session_id), load(in_b, session_id)
        write_turn(in_a, session_id, first, "from a", None, "ta")
        with pytest.raises(ConflictError):
            write_turn(in_b, session_id, second, "from b", None, "tb")
        regions.settle()
        assert len(step_items(regions, B, session_id)) == 1


EVENTS = ("home reads", "home writes", "other reads", "other writes", "home→other", "other→home")


def orders():
    """Every order of the six events in which each writer reads before it writes."""
    for order in itertools.permutations(EVENTS):
        if order.index("home reads") < order.index("home writes") and order.index("other reads") < order.index(
            "other writes"
        ):
            yield order


@pytest.mark.parametrize("same_key", [True, False], ids=["one key retried", "two keys"])
def test_a_turn_written_on_both_sides_of_a_partition_loses_nothing_in_any_order(same_key):
    """The home region's functions write the session there; the other region's functions
    cannot reach the home (a partition, or the home failing) and write it in their own
    replica. Replication in either direction can come at any point. Every order: each turn
    that was told it succeeded is in both replicas as written, the replicas are equal, a turn
    that failed was told why (a key is refused only once its other claim could be seen), and
    one Idempotency-Key shows one turn."""
    cases = list(orders())
    assert len(cases) == 180
    with global_table() as regions:
        home_store, other_store = regions.store(A), regions.store(B)
        regions.partition(B, A)
        for number, order in enumerate(cases):
            session_id = session_with_home(A, prefix=f"p{number}x")
            keys_of = {"home": f"k{number}a", "other": f"k{number}a" if same_key else f"k{number}b"}
            pages: dict[str, object] = {}
            outcome: dict[str, object] = {}
            written: dict[str, list] = {}
            for event in order:
                if event.endswith("reads"):
                    side = event.split()[0]
                    pages[side] = load(home_store if side == "home" else other_store, session_id)
                elif event.endswith("writes"):
                    side = event.split()[0]
                    store = home_store if side == "home" else other_store
                    try:
                        written[side] = write_turn(
                            store, session_id, pages[side], side, keys_of[side], f"{side}-{number}"
                        )
                        outcome[side] = "ok"
                    except (ConflictError, DuplicateRequestError) as error:
                        outcome[side] = type(error).__name__
                else:
                    origin, target = (A, B) if event == "home→other" else (B, A)
                    regions.replicate(origin, target)
            regions.settle()
            context = f"order {order}: {outcome}"
            assert regions.table.differences() == [], context
            for side, ahead in (("home", "other→home"), ("other", "home→other")):
                # A turn is refused only for its key: once the other side's claim has arrived,
                # or, for the home (which can reach the other replica), once it was written.
                if outcome[side] != "ok":
                    assert outcome[side] == "DuplicateRequestError" and same_key, context
                    seen_at = order.index(ahead)
                    if side == "home":
                        seen_at = min(seen_at, order.index("other writes"))
                    assert seen_at < order.index(f"{side} writes"), context
            items = step_items(regions, A, session_id)
            assert len(items) == sum(1 for v in outcome.values() if v == "ok"), context
            for side, messages in written.items():
                replica = A if side == "home" else B
                sk = keys.step_sk(messages[0].seq, replica)
                assert sk in items, context
                assert messages[0].turn_id == f"{side}-{number}"
            # Both replicas read the same conversation; one key shows one turn.
            views = [[(m.message_id, m.text) for m in load(s, session_id).messages] for s in (home_store, other_store)]
            assert views[0] == views[1], context
            users = [text for _, text in views[0] if text in ("home", "other")]
            if same_key:
                assert len(users) == 1, context
            else:
                assert sorted(users) == sorted(side for side, v in outcome.items() if v == "ok"), context


def test_a_step_written_after_the_home_moved_sorts_after_the_old_homes_steps_still_on_their_way():
    with global_table() as regions:
        home_store, other_store = regions.store(A), regions.store(B)
        session_id = session_with_home(A)
        for n in range(2):
            write_turn(home_store, session_id, load(home_store, session_id), f"before {n}", None, f"a{n}")
        regions.settle()
        # The home's last step does not replicate before its region fails.
        write_turn(home_store, session_id, load(home_store, session_id), "stranded", None, "a2")
        regions.regions.kill(A)
        page = load(other_store, session_id)
        assert page.replica == B and page.last_seq == 2
        written = write_turn(other_store, session_id, page, "after the move", None, "b0")
        assert written[0].seq == 2 + HOME_MOVE_SKIP
        regions.regions.revive(A)
        regions.settle()
        order = [m.text for m in reversed(load(home_store, session_id).messages) if m.role == "user"]
        assert order == ["before 0", "before 1", "stranded", "after the move"]
        assert regions.table.differences() == []


def test_a_later_home_that_sees_nothing_of_the_session_starts_after_the_first_homes_steps():
    with global_table() as regions:
        home_store, other_store = regions.store(A), regions.store(B)
        session_id = session_with_home(A)
        write_turn(home_store, session_id, load(home_store, session_id), "stranded first", None, "a0")
        regions.regions.kill(A)  # before anything replicated
        page = load(other_store, session_id)
        assert (page.replica, page.last_seq, page.meta) == (B, 0, None)
        assert write_turn(other_store, session_id, page, "after the move", None, "b0")[0].seq == HOME_MOVE_SKIP
        regions.regions.revive(A)
        regions.settle()
        order = [m.text for m in reversed(load(home_store, session_id).messages) if m.role == "user"]
        assert order == ["stranded first", "after the move"]


def test_a_decision_taken_on_both_sides_of_a_partition_is_kept_and_one_counts_everywhere():
    for order in itertools.permutations(("decide in a", "decide in b", "a→b", "b→a")):
        with global_table() as regions:
            in_a, in_b = regions.store(A), regions.store(B)
            in_a.approvals.put("run-1", 100, "create_ticket", {"title": "x"}, USER, "s1", "token", 3600)
            regions.settle()
            regions.partition(B, A)
            taken = {}
            for event in order:
                if event.startswith("decide"):
                    store, decision = (in_a, "approve") if event.endswith("a") else (in_b, "deny")
                    approval = store.approvals.get("run-1", 100)
                    if approval.status == "PENDING":
                        taken[event] = store.approvals.decide(approval, decision, USER, None)
                else:
                    regions.replicate(*((A, B) if event == "a→b" else (B, A)))
            regions.settle()
            assert regions.table.differences() == [], order
            decisions = [k for k in regions.table.items(A) if k[1].startswith("APPROVAL#00100#")]
            assert len(decisions) == sum(1 for v in taken.values() if v is not None) >= 1, order
            seen = {in_a.approvals.get("run-1", 100).status, in_b.approvals.get("run-1", 100).status}
            assert len(seen) == 1 and seen <= {"APPROVED", "DENIED"}, order


def test_an_idempotency_key_claimed_in_one_region_is_refused_in_another_once_it_has_arrived():
    with global_table() as regions:
        in_a, in_b = regions.store(A), regions.store(B)
        key_home = in_a.idempotency.home(USER, "k1").region
        other = B if key_home == A else A
        first, second = (in_a, in_b) if key_home == A else (in_b, in_a)
        assert first.idempotency.claim(USER, "k1", "body") is None
        regions.settle()
        regions.partition(other, key_home)  # the retry cannot reach the key's home
        existing = second.idempotency.claim(USER, "k1", "body")
        assert existing is not None and existing.status == "IN_PROGRESS", "the first claim, found in the replica"


def _held_out_then_back(regions: TwoRegions, returning: str, other: str):
    """The other region's store after it found ``returning``'s replica unreachable (its
    breaker holds it out for the cooldown), with ``returning`` back and reachable again."""
    held_out = regions.store(other)
    regions.partition(other, returning)
    with pytest.raises(ReplicaUnavailableError):
        held_out.table.at(returning).get("probe", "probe")
    regions.heal()
    assert not held_out.table.replicas.available(returning)
    return held_out


def test_a_turn_retried_in_a_region_that_came_back_is_refused_before_its_claim_has_arrived():
    """Failback: the returning region takes its sessions again at once, while the other
    region's functions still hold it out. A turn claimed there and retried in the returning
    region, before replication brings the claim, is refused: the claim is read in the other
    replica itself."""
    with global_table() as regions:
        session_id = session_with_home(A)
        held_out = _held_out_then_back(regions, returning=A, other=B)
        page = load(held_out, session_id)
        assert page.replica == B
        write_turn(held_out, session_id, page, "first run", "k-failback", "b-1")
        back = regions.store(A)
        page = load(back, session_id)
        assert page.replica == A and page.last_seq == 0, "nothing has replicated to A"
        with pytest.raises(DuplicateRequestError):
            write_turn(back, session_id, page, "second run", "k-failback", "a-1")
        # Another key in the same session is not refused.
        write_turn(back, session_id, page, "another turn", "k-other", "a-2")
        regions.settle()
        users = [m.text for m in load(back, session_id).messages if m.role == "user"]
        assert sorted(users) == ["another turn", "first run"]


def test_a_rest_key_retried_in_a_region_that_came_back_gets_the_first_claim_before_it_has_arrived():
    with global_table() as regions:
        key_home = regions.store(A).idempotency.home(USER, "k1").region
        other = B if key_home == A else A
        held_out = _held_out_then_back(regions, returning=key_home, other=other)
        assert held_out.idempotency.claim(USER, "k1", "body") is None  # claimed in ``other``
        existing = regions.store(key_home).idempotency.claim(USER, "k1", "body")
        assert existing is not None and existing.status == "IN_PROGRESS"


def test_a_session_created_by_two_users_in_two_regions_shows_each_step_to_its_owner_only():
    with global_table() as regions:
        in_a, in_b = regions.store(A), regions.store(B)
        session_id = session_with_home(A)
        regions.partition(B, A)
        in_a.conversations.append_step(session_id, 1, turn("alice's"), turn_id="t1", user_id="alice", new_session=True)
        page = load(in_b, session_id)
        in_b.conversations.append_step(
            session_id,
            page.next_seq(),
            turn("mallory's"),
            turn_id="t2",
            user_id="mallory",
            new_session=True,
            replica=page.replica,
        )
        regions.settle()
        for store in (in_a, in_b):
            page = store.conversations.load(session_id)
            assert page.meta.user_id == "alice", "the first creator owns it, in every replica"
            assert [m.text for m in page.messages if m.role == "user"] == ["alice's"]
        assert len(step_items(regions, A, session_id)) == 2, "nothing deleted"
