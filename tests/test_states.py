"""The state machine is exactly DESIGN §4: every one of the 9×9 pairs, recall, repeats."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kds.model import OrderStatus as S
from kds.states import FINAL, PROCESSABLE, TransitionError, apply_transition, path, summarize

# The table of DESIGN §4, written out independently of kds.states.TRANSITIONS.
ALLOWED = {
    (S.UNKNOWN, S.CREATED),
    (S.UNKNOWN, S.PROCESS_SKIPPED),
    (S.CREATED, S.SENT),
    (S.CREATED, S.FAILED),
    (S.CREATED, S.PROCESS_SKIPPED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.FAILED),
    (S.SENT, S.PROCESS_SKIPPED),
    (S.FAILED, S.SENT),
    (S.FAILED, S.PROCESS_SKIPPED),
    (S.DELIVERED, S.ACCEPTED),
    (S.DELIVERED, S.PROCESSED),
    (S.DELIVERED, S.REFUSED),
    (S.DELIVERED, S.PROCESS_SKIPPED),
    (S.ACCEPTED, S.PROCESSED),
    (S.ACCEPTED, S.REFUSED),
    (S.ACCEPTED, S.PROCESS_SKIPPED),
}


@pytest.mark.parametrize("current,target", list(itertools.product(S, S)))
def test_every_pair(current: S, target: S) -> None:
    # Every one of the 81 pairs: repeat = no-op, table = allowed, else a TransitionError naming the allowed targets.
    if current is target:
        assert apply_transition(current, target) is None
    elif (current, target) in ALLOWED:
        assert apply_transition(current, target) is target
    else:
        with pytest.raises(TransitionError) as err:
            apply_transition(current, target)
        assert err.value.allowed == {t for (c, t) in ALLOWED if c is current}
        assert current.value in str(err.value) and target.value in str(err.value)


@pytest.mark.parametrize("current,target", list(itertools.product(S, S)))
def test_recall_is_the_only_exit_from_a_final_status(current: S, target: S) -> None:
    # With recall set, exactly processed → accepted is added to the table.
    expected_ok = (current, target) in ALLOWED or (current, target) == (S.PROCESSED, S.ACCEPTED)
    if current is target:
        assert apply_transition(current, target, recall=True) is None
    elif expected_ok:
        assert apply_transition(current, target, recall=True) is target
    else:
        with pytest.raises(TransitionError):
            apply_transition(current, target, recall=True)


def test_cancel_reaches_process_skipped_from_every_non_final_status() -> None:
    for status in S:
        if status not in FINAL:
            assert apply_transition(status, S.PROCESS_SKIPPED) is S.PROCESS_SKIPPED


def test_processable_and_final_sets() -> None:
    assert {S.CREATED, S.FAILED} == PROCESSABLE
    assert {S.REFUSED, S.PROCESSED, S.PROCESS_SKIPPED} == FINAL


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.booleans()), max_size=60))
def test_random_sequences_follow_the_table(steps: list[tuple[S, bool]]) -> None:
    # Drive one item endpoint with random targets: the status only ever moves along allowed edges,
    # and once final it stays final unless recalled from processed.
    status = S.CREATED
    for target, recall in steps:
        try:
            new = apply_transition(status, target, recall=recall)
        except TransitionError:
            assert (status, target) not in ALLOWED
            continue
        if new is None:
            assert target is status
            continue
        assert (status, new) in ALLOWED or (recall and (status, new) == (S.PROCESSED, S.ACCEPTED))
        if status in FINAL:
            assert (status, new) == (S.PROCESSED, S.ACCEPTED)
        status = new


def test_summary_is_the_least_advanced_open_item() -> None:
    assert summarize([S.ACCEPTED, S.SENT, S.PROCESSED]) is S.SENT
    assert summarize([S.PROCESSED, S.PROCESS_SKIPPED]) is S.PROCESSED
    assert summarize([S.PROCESS_SKIPPED]) is S.PROCESS_SKIPPED
    assert summarize([S.REFUSED, S.PROCESS_SKIPPED]) is S.REFUSED


# path(): the walk a one-request status change takes (issue 15 item 4).


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_path_walks_only_allowed_steps_or_refuses(current: S, target: S) -> None:
    # Every step of a path is a transition of the table; a target with no path is refused.
    try:
        walk = path(current, target)
    except TransitionError:
        assert (current, target) not in ALLOWED and current is not target
        return
    assert (walk == []) is (current is target)
    assert all((a, b) in ALLOWED for a, b in itertools.pairwise([current, *walk]))
    assert all(s not in FINAL and s is not S.FAILED for s in walk[:-1])


@pytest.mark.parametrize(
    ("current", "target", "walk"),
    [
        (S.SENT, S.ACCEPTED, [S.DELIVERED, S.ACCEPTED]),
        (S.CREATED, S.ACCEPTED, [S.SENT, S.DELIVERED, S.ACCEPTED]),
        (S.FAILED, S.PROCESSED, [S.SENT, S.DELIVERED, S.PROCESSED]),
        (S.SENT, S.PROCESSED, [S.DELIVERED, S.PROCESSED]),
        (S.DELIVERED, S.ACCEPTED, [S.ACCEPTED]),
        (S.SENT, S.PROCESS_SKIPPED, [S.PROCESS_SKIPPED]),
    ],
)
def test_path_is_the_shortest_walk_through_progress(current: S, target: S, walk: list[S]) -> None:
    assert path(current, target) == walk


def test_path_never_walks_out_of_a_final_status_or_backwards() -> None:
    for current, target in [
        (S.PROCESSED, S.ACCEPTED),
        (S.ACCEPTED, S.SENT),
        (S.REFUSED, S.PROCESSED),
    ]:
        with pytest.raises(TransitionError):
            path(current, target)


def test_path_never_walks_to_delivered() -> None:
    # `delivered` is a screen's receipt of a `sent` ticket, not a cook's action: a late receipt
    # (the print failed meanwhile) must stay a 409, never walk failed -> sent -> delivered and hide
    # "print failed" from the kitchen.
    for current in (S.FAILED, S.CREATED):
        with pytest.raises(TransitionError):
            path(current, S.DELIVERED)
    assert path(S.SENT, S.DELIVERED) == [S.DELIVERED]
    assert path(S.FAILED, S.ACCEPTED) == [S.SENT, S.DELIVERED, S.ACCEPTED]  # the cook saw it anyway


def test_statuses_read_their_value_in_c_and_stay_the_nine_members() -> None:
    # kds.states.fast_value: `value` from C (pydantic reads it per status it encodes), no member.
    from operator import attrgetter

    from pydantic import TypeAdapter

    from kds.model import HoldReason, PurchaseType

    for enum_cls in (S, PurchaseType, HoldReason):
        assert isinstance(vars(enum_cls)["value"].fget, attrgetter)
        assert [m.value for m in enum_cls] == [m._value_ for m in enum_cls]
    assert len(S) == 9 and "value" not in S.__members__
    assert S("sent") is S.SENT and S.SENT.value == "sent"
    assert (
        TypeAdapter(list[S]).dump_json([S.SENT, S.PROCESS_SKIPPED]) == b'["sent","processSkipped"]'
    )
