"""The SSE decoder follows the WHATWG event-stream rules, byte for byte."""

from producer.sse import SseDecoder, SseEvent

FRAME = b'event: message\nid: [{"offset":1}]\ndata: {"a": 1}\n\n'


def test_an_event_is_dispatched_at_its_blank_line_with_exact_data_bytes():
    assert SseDecoder().feed(FRAME) == [SseEvent("message", b'{"a": 1}', '[{"offset":1}]')]


def test_an_event_split_across_chunks_at_any_byte_is_decoded_once():
    for cut in range(1, len(FRAME)):
        decoder = SseDecoder()
        events = decoder.feed(FRAME[:cut]) + decoder.feed(FRAME[cut:])
        assert [e.data for e in events] == [b'{"a": 1}'], cut


def test_a_truncated_frame_is_never_dispatched():
    decoder = SseDecoder()
    assert decoder.feed(FRAME + FRAME[: len(FRAME) // 2]) == [
        SseEvent("message", b'{"a": 1}', '[{"offset":1}]')
    ]
    # the connection ends here: nothing half-received comes out, the id stays put
    assert decoder.last_event_id == '[{"offset":1}]'


def test_crlf_and_cr_line_endings_are_accepted_even_split_between_chunks():
    decoder = SseDecoder()
    events = decoder.feed(b"data: x\r") + decoder.feed(b"\n\r\n") + decoder.feed(b"data: y\r\r")
    assert [e.data for e in events] == [b"x"]  # the last CR may still be half of a CRLF
    assert [e.data for e in decoder.feed(b":")] == [b"y"]


def test_comments_are_ignored_but_counted_as_life():
    decoder = SseDecoder()
    assert decoder.feed(b":ok\n\n:\n\n") == []
    assert decoder.lines == 4


def test_multiple_data_lines_join_with_newlines_and_the_id_carries_over():
    decoder = SseDecoder()
    events = decoder.feed(b"id: 7\ndata: a\ndata: b\n\ndata: c\n\n")
    assert events == [SseEvent("message", b"a\nb", "7"), SseEvent("message", b"c", "7")]


def test_retry_field_and_utf8_bom_and_invalid_utf8_data():
    decoder = SseDecoder()
    events = decoder.feed(b"\xef\xbb\xbfretry: 2500\ndata: \xff\xfe\n\n")
    assert decoder.retry_ms == 2500
    assert events == [SseEvent("message", b"\xff\xfe", None)]


def test_an_event_larger_than_the_limit_is_reported_without_its_data():
    decoder = SseDecoder(max_event_bytes=1024)
    big = b"data: " + b"x" * 5000 + b"\n\n"
    events = [e for i in range(0, len(big), 700) for e in decoder.feed(big[i : i + 700])]
    assert len(events) == 1 and events[0].data == b"" and events[0].oversized > 1024
    assert decoder.feed(b"data: small\n\n")[0].data == b"small"


def test_id_with_nul_is_ignored_and_other_event_types_are_kept():
    events = SseDecoder("old").feed(b"event: error\nid: a\x00b\ndata: z\n\n")
    assert events == [SseEvent("error", b"z", "old")]


def test_data_lines_that_add_up_past_the_limit_report_the_event_without_its_data():
    decoder = SseDecoder(max_event_bytes=1024)
    half = b"data: " + b"x" * 600 + b"\n"
    (event,) = decoder.feed(half + half + b"\n")
    assert event.data == b"" and event.oversized > 1024
    (after,) = decoder.feed(b"data: ok\n\n")
    assert after.data == b"ok" and not after.oversized  # the next event is whole again


def test_the_rest_of_a_line_too_long_for_any_event_is_never_read_as_a_field():
    decoder = SseDecoder(max_event_bytes=1024)
    assert decoder.feed(b"x" * 2000) == []  # dropped as it streams in
    decoder.feed(b"retry: 1234\n\ndata: ok\n\n")  # "retry: 1234" ends the long line
    assert decoder.retry_ms is None


# The decoder cuts Wikimedia's common frame out whole (`SseDecoder._complete`); every
# other line goes through the line-by-line path. Both must give the same events and state.

ODD = [
    b":keep-alive\n\n",
    b": \n",
    b"retry: 3000\n",
    b"event: error\nid: e1\ndata: z\n\n",
    b"event: message\nid: a\x00b\ndata: nul in the id\n\n",
    b"event: message\nid: m1\ndata: a\ndata: b\n\n",
    b"event: message\nid: only-an-id\n\n",
    b"data: before\nevent: message\nid: late\n\n",
    b"event: message\nid: \ndata: empty id\n\n",
    b"event: message\nid:tight\ndata: x\n\n",
    b"event: message\nid: t2\ndata:tight\n\n",
    b"event: message\nid: t3\ndata: \n\n",
    b"event: message\nid: crlf\r\ndata: x\r\n\r\n",
    b"event: message\nid: big\ndata: " + b"y" * 1500 + b"\n\n",
    b"event: message\nid: long-line\ndata: " + b"w" * 3000,
    b"\n\n",
    b"event: message\nid: [\xff]\ndata: invalid utf-8 in the id\n\n",
    b"\n\n\n",
    b"event: messages\nid: s\ndata: x\n\n",
    b"event: message\nid: tail\ndata: x\n\n\n",
]


def recorded_frames() -> list[bytes]:
    from devtools.recordings import RECENTCHANGE

    body = RECENTCHANGE.read_bytes()
    return [frame + b"\n\n" for frame in body.split(b"\n\n") if frame]


def decode(stream: bytes, cuts: list[int], fast: bool, limit: int) -> list[object]:
    decoder = SseDecoder("start", max_event_bytes=limit)
    decoder._fast_frames = fast
    seen: list[object] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        events = decoder.feed(stream[a:b])
        seen.append(
            (events, decoder.last_event_id, decoder.retry_ms, decoder.lines, decoder.comments)
        )
    return seen


def test_the_common_frame_shortcut_decodes_exactly_as_line_by_line_on_recorded_data():
    import random

    rng = random.Random(27)
    frames = recorded_frames()
    assert len(frames) > 300
    for limit in (1024, 1 << 20):
        for _ in range(20):
            parts = frames + ODD * 3
            rng.shuffle(parts)
            stream = (b"\xef\xbb\xbf" if rng.random() < 0.5 else b"") + b"".join(parts)
            cuts = sorted(rng.sample(range(1, len(stream)), rng.choice([1, 10, 200, 3000])))
            fast = decode(stream, cuts, True, limit)
            assert fast == decode(stream, cuts, False, limit)
            assert sum(len(events) for events, *_ in fast) > len(frames)


def test_the_common_frame_shortcut_equals_line_by_line_at_every_cut():
    stream = b"".join([*recorded_frames()[:2], *ODD[:14], *recorded_frames()[2:4]])
    for cut in range(1, len(stream)):
        assert decode(stream, [cut], True, 1024) == decode(stream, [cut], False, 1024), cut
