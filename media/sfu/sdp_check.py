"""Reject SDP that aiortc would choke on or silently mis-apply, before it touches a peer connection."""

from __future__ import annotations

from aiortc.sdp import SessionDescription


def check_sdp(sdp: str, local_offer: str | None) -> str | None:
    """Return a problem description, or None if ``sdp`` looks applicable.

    :param local_offer: for an answer, the SFU offer it answers (its mids must match, in order).
    """
    if not sdp.startswith('v=0'):
        return 'Unable to parse SDP: it must start with v=0'
    if not sdp.endswith('\n'):
        return 'Unable to parse SDP: missing termination at the end (CRLF)'
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        return f'Unable to parse SDP: {exc or type(exc).__name__}'
    if not parsed.media:
        return 'SDP has no media sections'
    for media in parsed.media:
        if media.kind in ('audio', 'video') and (
            media.ice is None or not media.ice.usernameFragment or media.dtls is None
        ):
            if media.port != 0:
                return f'media section {media.rtp.muxId!r} lacks ICE credentials or a DTLS fingerprint'
    if local_offer is not None:
        offered = [m.rtp.muxId for m in SessionDescription.parse(local_offer).media]
        answered = [m.rtp.muxId for m in parsed.media]
        if offered != answered:
            return f'answer media sections {answered} do not match the offer {offered}'
    return None
