"""The per-key negotiation state machine (media/negotiation_states.py): every transition, every illegal one, and the
paths PageMedia walks — pure, no I/O. Plus the sync loop's backoff (components/call.py)."""

from __future__ import annotations

import itertools

import pytest

from components.call import SYNC_BACKOFF_MAX, sync_backoff
from media.negotiation_states import (
    IN_FLIGHT,
    PULL_STATES,
    PUSH_STATES,
    TRANSITIONS,
    IllegalTransition,
    KeyEvent,
    KeyState,
    can,
    transition,
)

S, E = KeyState, KeyEvent

EXPECTED = {
    # push
    (S.IDLE, E.PUSH): S.OFFERING,
    (S.FAILED, E.PUSH): S.OFFERING,
    (S.OFFERING, E.ACCEPT): S.ACCEPTED,
    (S.OFFERING, E.FAIL): S.FAILED,
    (S.ACCEPTED, E.SENDS): S.SENDING,
    (S.ACCEPTED, E.NO_MEDIA): S.SILENT,
    (S.ACCEPTED, E.SWITCH_OFF): S.PAUSED,
    (S.ACCEPTED, E.CLOSE): S.CLOSING,
    (S.ACCEPTED, E.FAIL): S.FAILED,
    (S.SENDING, E.SWITCH_OFF): S.PAUSED,
    (S.SENDING, E.CLOSE): S.CLOSING,
    (S.SENDING, E.FAIL): S.FAILED,
    (S.SILENT, E.SENDS): S.SENDING,
    (S.SILENT, E.SWITCH_OFF): S.PAUSED,
    (S.SILENT, E.EXPIRE): S.CLOSING,
    (S.SILENT, E.CLOSE): S.CLOSING,
    (S.SILENT, E.FAIL): S.FAILED,
    (S.PAUSED, E.SWITCH_ON): S.ACCEPTED,
    (S.PAUSED, E.EXPIRE): S.CLOSING,
    (S.PAUSED, E.CLOSE): S.CLOSING,
    (S.PAUSED, E.FAIL): S.FAILED,
    # pull
    (S.IDLE, E.PULL): S.REQUESTING,
    (S.FAILED, E.PULL): S.REQUESTING,
    (S.REQUESTING, E.OFFERED): S.ANSWERING,
    (S.REQUESTING, E.REFUSED): S.IDLE,
    (S.REQUESTING, E.FAIL): S.FAILED,
    (S.ANSWERING, E.ANSWERED): S.RECEIVING,
    (S.ANSWERING, E.FAIL): S.FAILED,
    (S.RECEIVING, E.CLOSE): S.CLOSING,
    (S.RECEIVING, E.FAIL): S.FAILED,
    # both
    (S.CLOSING, E.CLOSED): S.IDLE,
    (S.CLOSING, E.FAIL): S.FAILED,
    (S.FAILED, E.DROP): S.IDLE,
}


def test_the_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(('state', 'event'), list(EXPECTED), ids=lambda v: v.value)
def test_every_legal_transition(state: KeyState, event: KeyEvent) -> None:
    assert transition(state, event) is EXPECTED[(state, event)]
    assert can(state, event)


ILLEGAL = [pair for pair in itertools.product(KeyState, KeyEvent) if pair not in EXPECTED]


@pytest.mark.parametrize(('state', 'event'), ILLEGAL, ids=lambda v: v.value)
def test_every_other_transition_raises(state: KeyState, event: KeyEvent) -> None:
    assert not can(state, event)
    with pytest.raises(IllegalTransition) as raised:
        transition(state, event)
    assert raised.value.state is state and raised.value.event is event
    assert state.value in str(raised.value) and event.value in str(raised.value)


def walk(state: KeyState, *events: KeyEvent) -> KeyState:
    for event in events:
        state = transition(state, event)
    return state


def test_push_paths() -> None:
    assert walk(S.IDLE, E.PUSH, E.ACCEPT, E.SENDS) is S.SENDING
    assert walk(S.IDLE, E.PUSH, E.ACCEPT, E.NO_MEDIA, E.SENDS) is S.SENDING  # a camera that starts late
    # switched off and on again shortly: same locator, watched again
    assert walk(S.SENDING, E.SWITCH_OFF, E.SWITCH_ON, E.SENDS) is S.SENDING
    # switched off for long, or silent for long: closed and pushed again (a new locator)
    assert walk(S.SENDING, E.SWITCH_OFF, E.EXPIRE, E.CLOSED, E.PUSH, E.ACCEPT, E.SENDS) is S.SENDING
    assert walk(S.SILENT, E.EXPIRE, E.CLOSED, E.PUSH, E.ACCEPT, E.SENDS) is S.SENDING
    assert walk(S.SENDING, E.CLOSE, E.CLOSED) is S.IDLE


def test_pull_paths() -> None:
    assert walk(S.IDLE, E.PULL, E.OFFERED, E.ANSWERED, E.CLOSE, E.CLOSED) is S.IDLE
    assert walk(S.IDLE, E.PULL, E.REFUSED) is S.IDLE  # nothing created at the SFU


@pytest.mark.parametrize('state', sorted(set(KeyState) - {S.IDLE, S.FAILED}, key=lambda s: s.value))
def test_every_live_or_in_flight_state_can_fail_and_every_failure_recovers(state: KeyState) -> None:
    """No wedge: from any state with something at the SFU a failure is possible, and FAILED leads out again."""
    failed = transition(state, E.FAIL)
    assert failed is S.FAILED
    assert walk(failed, E.PUSH, E.ACCEPT, E.SENDS) is S.SENDING
    assert walk(failed, E.PULL, E.OFFERED, E.ANSWERED) is S.RECEIVING
    assert walk(failed, E.DROP) is S.IDLE


def test_every_state_is_reachable_from_idle_and_can_get_back_to_idle() -> None:
    def reachable(start: KeyState, edges: dict[KeyState, set[KeyState]]) -> set[KeyState]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), set()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    forward: dict[KeyState, set[KeyState]] = {}
    backward: dict[KeyState, set[KeyState]] = {}
    for (state, _), nxt in TRANSITIONS.items():
        forward.setdefault(state, set()).add(nxt)
        backward.setdefault(nxt, set()).add(state)
    assert reachable(S.IDLE, forward) == set(KeyState)
    assert reachable(S.IDLE, backward) == set(KeyState)  # IDLE is reachable from every state


def test_state_groups() -> None:
    assert PUSH_STATES.isdisjoint(PULL_STATES)
    assert IN_FLIGHT <= {S.OFFERING, S.REQUESTING, S.ANSWERING, S.CLOSING}
    assert all(not can(state, E.PUSH) for state in PUSH_STATES)  # a pushed key is never pushed twice
    assert all(not can(state, E.PULL) for state in PULL_STATES)


def test_sync_backoff_doubles_up_to_a_cap() -> None:
    assert [sync_backoff(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert sync_backoff(1000) == SYNC_BACKOFF_MAX
