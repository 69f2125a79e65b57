"""Bounds on a client's SDP, checked in one linear pass before aiortc parses it (issue #10)."""

from __future__ import annotations

from media.sfu.sdp_check import MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, check_bounds, check_sdp

HEADER = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n'
ICE = 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n'


def section(kind: str, mid: str, pts: list[int], extra: str = '') -> str:
    rtpmaps = ''.join(f'a=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} nack\r\n' for pt in pts)
    formats = ' '.join(str(pt) for pt in pts)
    return (
        f'm={kind} 9 UDP/TLS/RTP/SAVPF {formats}\r\nc=IN IP4 0.0.0.0\r\n{ICE}a=mid:{mid}\r\na=sendonly\r\n'
        f'a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n{rtpmaps}{extra}'
    )


def test_a_browser_like_offer_passes() -> None:
    sdp = HEADER + section('audio', '0', [111, 63, 9, 0, 8]) + section('video', '1', list(range(96, 136)))
    assert check_bounds(sdp) is None
    assert check_sdp(sdp, None) is None


def test_duplicated_rtpmap_lines_are_refused_before_parsing() -> None:
    poisoned = section('video', '1', [96]) + 'a=rtpmap:96 VP8/90000\r\n' * 100
    problem = check_sdp(HEADER + section('audio', '0', [111]) + poisoned, None)
    assert problem is not None and 'payload type 96 twice' in problem


def test_a_payload_type_listed_twice_on_the_m_line_is_refused() -> None:
    sdp = HEADER + section('video', '0', [96, 96])
    assert 'twice' in (check_bounds(sdp) or '')


def test_two_sections_sharing_a_mid_are_refused() -> None:
    sdp = HEADER + section('audio', '0', [111]) + section('video', '0', [96])
    assert check_bounds(sdp) == "mid '0' is used by two media sections"


def test_too_many_media_sections_are_refused() -> None:
    sdp = HEADER + ''.join(section('video', str(i), [96]) for i in range(MAX_MEDIA_SECTIONS + 1))
    assert 'too many media sections' in (check_bounds(sdp) or '')


def test_size_line_length_and_extension_ids_are_bounded() -> None:
    assert 'too large' in (check_bounds('v=0\r\n' + 'a=x\r\n' * (MAX_SDP_BYTES // 5 + 1)) or '')
    assert 'line too long' in (check_bounds(HEADER + 'a=' + 'x' * 5000 + '\r\n') or '')
    twice = section('video', '0', [96], extra='a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n')
    assert 'extension id 1 twice' in (check_bounds(HEADER + twice) or '')
    many = section('video', '0', [96], extra=''.join(f'a=extmap:{i} urn:x:{i}\r\n' for i in range(2, 40)))
    assert 'too many header extensions' in (check_bounds(HEADER + many) or '')


def test_the_negotiated_codecs_of_an_answer_come_from_one_parse(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aiortc.sdp import SessionDescription

    from media.sfu import codecs

    calls: list[int] = []
    real = SessionDescription.parse

    def counting(sdp: str) -> SessionDescription:
        calls.append(1)
        return real(sdp)

    monkeypatch.setattr(codecs.SessionDescription, 'parse', staticmethod(counting))
    codecs._codecs_by_mid.cache_clear()
    answer = HEADER + ''.join(section('video', str(i), [96]) for i in range(20))
    found = [codecs.negotiated_codec(answer, str(i)) for i in range(20)]
    assert all(f is not None and f[0].lower() == 'video/vp8' for f in found)
    assert codecs.negotiated_codec(answer, 'nope') is None
    assert len(calls) == 1
