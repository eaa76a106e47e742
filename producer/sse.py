"""Server-Sent Events wire format, decoded incrementally from raw bytes.

Why not ``sseclient-py``: its reader hands a *partial* event to the caller when the
connection drops mid-frame, decodes every line as UTF-8 (one invalid byte raises), and
re-joins ``data`` as text. For a producer that resumes with ``Last-Event-ID`` the first
flaw loses events for good: the truncated frame carries the event's id, so the resume
point moves past an event that was never published whole. This decoder follows the
WHATWG algorithm instead: an event is dispatched only at its closing blank line, the
``data`` stays the exact bytes the server sent, and memory is bounded per event.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SseEvent:
    """One dispatched event. ``data`` holds the exact bytes of its data lines.

    Not frozen: one is made per event, and a frozen dataclass's ``__init__`` costs about
    3.6 times as much (it sets each field through ``object.__setattr__``)."""

    event: str
    data: bytes
    id: str | None
    #: Size of the data when it exceeded the decoder's limit (``data`` is then empty).
    oversized: int = 0


class SseDecoder:
    """Feed it bytes as they arrive; it returns the events completed by them.

    ``last_event_id`` follows the spec: an ``id`` field sets it and it carries over to
    later events that have none. ``retry_ms`` is the server's latest ``retry`` field.
    ``lines`` counts every line including ``:`` comments, so keep-alives show life;
    ``comments`` counts the comments alone: a server sends them when it has nothing else.
    """

    def __init__(self, last_event_id: str | None = None, max_event_bytes: int = 4 << 20) -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self.lines = 0
        self.comments = 0
        self._max = max_event_bytes
        self._buf = bytearray()
        self._data: list[bytes] = []
        self._data_size = 0
        self._oversized = 0
        self._event = ""
        self._skipping_line = False
        self._started = False

    #: cut Wikimedia's common frame out whole (`_complete`); False: every line one by one
    _fast_frames = True

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if not self._started:
            chunk = self._strip_bom(chunk)
            if not self._started:
                return []
        buf = self._buf
        buf += chunk
        if b"\r" in buf:
            self._normalise_cr()
        events: list[SseEvent] = []
        end = buf.rfind(b"\n")
        if end >= 0:
            pos = end + 1
            self._complete(bytes(buf[:pos]), events)
        else:
            pos = 0
        del buf[:pos]
        if len(buf) > self._max:
            # A line longer than any event may be: drop it as it streams in.
            self._oversized += len(buf)
            buf.clear()
            self._skipping_line = True
        elif self._skipping_line:
            self._oversized += len(buf)
            buf.clear()
        return events

    def _complete(self, text: bytes, events: list[SseEvent]) -> None:
        """Take ``text``: complete lines, each ending in LF.

        Frames of the shape Wikimedia sends (``event: message``, ``id: ...``, one ``data:
        ...`` line, the blank line) are cut out of the text whole when nothing is pending
        before them (`_fast_frames`); every other line goes through `_lines`, one by one.
        Both give the same events and the same state (tests/unit/test_sse.py compares
        them): the shortcut only skips splitting the common frame into lines and looking
        at each. A line-by-line part always ends at a blank line (nothing is pending after
        it) or at the end of the text."""
        pos, size = 0, len(text)
        if not self._fast_frames:
            self._split(text, events)
            return
        limit = self._max
        if (  # the usual cut between chunks: inside the data line of a common frame
            self._event == "message"
            and not (self._data or self._oversized or self._skipping_line)
            and text.startswith(b"data: ")
        ):
            data_end = text.find(b"\n", 6)
            if text.startswith(b"\n", data_end + 1) and data_end - 6 <= limit:
                events.append(SseEvent("message", text[6:data_end], self.last_event_id))
                self._event = ""
                self.lines += 2
                pos = data_end + 2
        if self._data or self._oversized or self._event or self._skipping_line:
            if text.startswith(b"\n") and not self._skipping_line:
                pos = 1  # the blank line that ends the pending event
            else:
                blank = text.find(b"\n\n")  # the pending event ends at the first blank line
                pos = size if blank < 0 else blank + 2
            self._split(text[:pos], events)
        while pos < size:
            if text.startswith(b"event: message\nid: ", pos):
                id_end = text.find(b"\n", pos + 19)
                if text.startswith(b"data: ", id_end + 1):
                    data_end = text.find(b"\n", id_end + 7)
                    # a blank line next (data_end + 1 < size: the search ran inside text)
                    if text.startswith(b"\n", data_end + 1) and data_end - id_end - 7 <= limit:
                        sse_id = text[pos + 19 : id_end]
                        if b"\x00" not in sse_id:
                            self.last_event_id = sse_id.decode("utf-8", "replace")
                            events.append(
                                SseEvent("message", text[id_end + 7 : data_end], self.last_event_id)
                            )
                            self.lines += 4
                            pos = data_end + 2
                            continue
            blank = text.find(b"\n\n", pos)
            if blank < 0:
                break
            self._split(text[pos : blank + 2], events)
            pos = blank + 2
        if pos < size:
            self._split(text[pos:], events)

    def _split(self, text: bytes, events: list[SseEvent]) -> None:
        """Take ``text`` (complete lines, each ending in LF) line by line."""
        lines = text[:-1].split(b"\n")
        self.lines += len(lines)
        if self._skipping_line:  # the rest of a line too long for any event
            self._skipping_line = False
            lines[0] = b"\x00"  # dropped below, as a field name no spec knows
            self.lines -= 1
        self._lines(lines, events)

    def _strip_bom(self, chunk: bytes) -> bytes:
        pending = bytes(self._buf) + chunk
        if len(pending) < len(_BOM) and _BOM.startswith(pending):
            self._buf = bytearray(pending)
            return b""
        self._buf = bytearray()
        self._started = True
        return pending[len(_BOM) :] if pending.startswith(_BOM) else pending

    def _normalise_cr(self) -> None:
        """Turn CRLF and lone CR into LF; keep a trailing CR until its LF may follow."""
        buf = self._buf
        trailing_cr = buf.endswith(b"\r")
        body = bytes(buf[:-1] if trailing_cr else buf)
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf[:] = body + (b"\r" if trailing_cr else b"")
        if trailing_cr and b"\n" not in body:
            return

    def _lines(self, lines: list[bytes], events: list[SseEvent]) -> None:
        """Take complete lines. The common ones (``data: ``, ``event: message``, the
        blank line) are handled inline: a method call per line was a sixth of the
        producer's time per event; every other line goes through `_line`."""
        data = self._data
        limit = self._max
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                data = self._data  # a new list after each dispatch
            elif line.startswith(b"data: ") and not self._oversized:
                size = self._data_size + len(line) - 6
                if size <= limit:
                    data.append(line[6:])
                    self._data_size = size + 1
                else:
                    self._line(line)
            elif line == b"event: message":
                self._event = "message"
            elif line != b"\x00":
                self._line(line)

    def _line(self, line: bytes) -> SseEvent | None:
        """One line other than the blank line (which dispatches, in `_lines`)."""
        if line[0] == 0x3A:  # ':' comment, e.g. a keep-alive
            self.comments += 1
            return None
        field, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            if self._oversized or self._data_size + len(value) > self._max:
                self._oversized += len(value) + self._data_size
                self._data.clear()
                self._data_size = 0
            else:
                self._data.append(value)
                self._data_size += len(value) + 1
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        elif field == b"id":
            if b"\x00" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif field == b"retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, oversized = self._data, self._oversized
        event = self._event or "message"
        self._data, self._data_size, self._oversized, self._event = [], 0, 0, ""
        if oversized:
            return SseEvent(event, b"", self.last_event_id, oversized=oversized)
        if not data:
            return None
        return SseEvent(event, b"\n".join(data), self.last_event_id)
