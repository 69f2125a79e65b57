from __future__ import annotations

from media.sfu.sdp_rejected import mark_rejected, rejected_mids

OFFER = (
    'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 2\r\na=msid-semantic: WMS\r\n'
    'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n'
    'm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n'
    'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\n'
)
ANSWER = (
    'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n'
    'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n'
    'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n'
    'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n'
)


def test_rejected_mids_are_the_port_zero_sections() -> None:
    assert rejected_mids(OFFER) == {'1'}
    assert rejected_mids(ANSWER) == set()
    assert rejected_mids('v=0\r\n') == set()


def test_mark_rejected_zeroes_the_port_and_leaves_the_bundle_group() -> None:
    marked = mark_rejected(ANSWER, {'1'})
    assert 'a=group:BUNDLE 0 2\r\n' in marked
    assert 'm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n' in marked
    assert 'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n' in marked
    assert 'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n' in marked
    assert rejected_mids(marked) == {'1'}


def test_mark_rejected_keeps_everything_else_byte_for_byte() -> None:
    assert mark_rejected(ANSWER, set()) == ANSWER
    assert mark_rejected(ANSWER, {'7'}) == ANSWER  # a mid that is not there changes nothing
    assert mark_rejected(ANSWER, {'1'}).replace('m=video 0 ', 'm=video 9 ', 1).replace(
        'BUNDLE 0 2', 'BUNDLE 0 1 2'
    ) == (ANSWER)


def test_a_bundle_group_left_empty_is_dropped() -> None:
    sdp = 'v=0\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n'
    assert mark_rejected(sdp, {'0'}) == 'v=0\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=mid:0\r\n'
