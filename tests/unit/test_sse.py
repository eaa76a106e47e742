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
