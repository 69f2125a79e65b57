"""The negotiation state of one key of a page — a pushed local track ('mic', 'cam-1') or a pulled tile — as ONE pure,
table-driven state machine (h11 style): no I/O, no clock, no asyncio. `media.negotiation.PageMedia` drives it and
does the exchanges; this module only says which step may follow which.

Push (our own track; one Calls session per page for all of them)::

    IDLE ─PUSH→ OFFERING ─ACCEPT→ ACCEPTED ─SENDS→ SENDING ─SWITCH_OFF→ PAUSED ─SWITCH_ON→ ACCEPTED
                                     └─NO_MEDIA→ SILENT ─SENDS→ SENDING
    SILENT / PAUSED ─EXPIRE→ CLOSING  (sent nothing long enough for the SFU to collect it: close, then push again)
    live ─CLOSE→ CLOSING ─CLOSED→ IDLE

Pull (a tile; one Calls session per page for all of them)::

    IDLE ─PULL→ REQUESTING ─OFFERED→ ANSWERING ─ANSWERED→ RECEIVING ─CLOSE→ CLOSING ─CLOSED→ IDLE
    REQUESTING ─REFUSED→ IDLE  (the SFU created nothing for it: not found, no media yet)

Any exchange that fails half-way, and any key whose session is dropped, goes ─FAIL→ FAILED: what the SFU holds for
it is unknown, so its session is rebuilt (forced close of what is left, a new session, the browser resets that peer
connection). A FAILED push key is pushed again (─PUSH→); a FAILED tile is forgotten (─DROP→ IDLE) and pulled again
if it is still wanted.
"""

from __future__ import annotations

from enum import Enum


class KeyState(Enum):
    """Where one key's negotiation stands."""

    IDLE = 'idle'  # nothing at the SFU for this key
    OFFERING = 'offering'  # push: the browser's offer is made, tracks/new (local) in flight
    ACCEPTED = 'accepted'  # push: the SFU's answer is applied; watching whether the sender sends
    SENDING = 'sending'  # push: media flows; the locator is announced
    SILENT = 'silent'  # push: negotiated, nothing sent yet; not announced
    PAUSED = 'paused'  # push: switched off by its user; sends nothing, the locator is kept
    REQUESTING = 'requesting'  # pull: tracks/new (remote) in flight
    ANSWERING = 'answering'  # pull: the SFU offered; the browser answers, then renegotiate
    RECEIVING = 'receiving'  # pull: established
    CLOSING = 'closing'  # close (negotiated or forced) in flight
    FAILED = 'failed'  # an exchange failed or the session was dropped: what the SFU holds is unknown


class KeyEvent(Enum):
    """What happens to a key."""

    PUSH = 'push'
    ACCEPT = 'accept'
    SENDS = 'sends'
    NO_MEDIA = 'no_media'
    SWITCH_OFF = 'switch_off'
    SWITCH_ON = 'switch_on'
    EXPIRE = 'expire'
    PULL = 'pull'
    OFFERED = 'offered'
    ANSWERED = 'answered'
    REFUSED = 'refused'
    CLOSE = 'close'
    CLOSED = 'closed'
    FAIL = 'fail'
    DROP = 'drop'


S, E = KeyState, KeyEvent

TRANSITIONS: dict[tuple[KeyState, KeyEvent], KeyState] = {
    # ---- push
    (S.IDLE, E.PUSH): S.OFFERING,
    (S.FAILED, E.PUSH): S.OFFERING,  # re-push after the session was rebuilt
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
    (S.PAUSED, E.SWITCH_ON): S.ACCEPTED,  # same locator: watch again whether it sends
    (S.PAUSED, E.EXPIRE): S.CLOSING,  # off long enough to be collected: close, then push again (new locator)
    (S.PAUSED, E.CLOSE): S.CLOSING,
    (S.PAUSED, E.FAIL): S.FAILED,
    # ---- pull
    (S.IDLE, E.PULL): S.REQUESTING,
    (S.FAILED, E.PULL): S.REQUESTING,
    (S.REQUESTING, E.OFFERED): S.ANSWERING,
    (S.REQUESTING, E.REFUSED): S.IDLE,
    (S.REQUESTING, E.FAIL): S.FAILED,
    (S.ANSWERING, E.ANSWERED): S.RECEIVING,
    (S.ANSWERING, E.FAIL): S.FAILED,
    (S.RECEIVING, E.CLOSE): S.CLOSING,
    (S.RECEIVING, E.FAIL): S.FAILED,
    # ---- both
    (S.CLOSING, E.CLOSED): S.IDLE,
    (S.CLOSING, E.FAIL): S.FAILED,
    (S.FAILED, E.DROP): S.IDLE,
}

PUSH_STATES = frozenset({S.OFFERING, S.ACCEPTED, S.SENDING, S.SILENT, S.PAUSED})
PULL_STATES = frozenset({S.REQUESTING, S.ANSWERING, S.RECEIVING})
IN_FLIGHT = frozenset({S.OFFERING, S.REQUESTING, S.ANSWERING, S.CLOSING})
"""States that only exist while an exchange holds the session's lock: a key seen in one by anyone else is a bug."""


class IllegalTransition(Exception):
    """`event` may not happen to a key in `state`."""

    def __init__(self, state: KeyState, event: KeyEvent) -> None:
        super().__init__(f'{event.value!r} is not allowed in state {state.value!r}')
        self.state = state
        self.event = event


def transition(state: KeyState, event: KeyEvent) -> KeyState:
    """The state after `event`; raises `IllegalTransition` when the table has no such step."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def can(state: KeyState, event: KeyEvent) -> bool:
    """True when `event` may happen in `state`."""
    return (state, event) in TRANSITIONS
