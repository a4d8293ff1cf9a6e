"""Server-sent events, read as they arrive: the ``text/event-stream`` framing only.

Lines are ``field: value``; a blank line ends an event; ``data`` lines join with a
newline; comment lines (``:``) are skipped. Fed chunk by chunk, with no need for a
chunk to end on a line: a long ``data`` line (a base64 image) may span hundreds.
"""

from __future__ import annotations

import attrs

__all__ = ["Event", "EventReader"]


@attrs.frozen
class Event:
    """One event: its type (``"message"`` when it names none) and its data."""

    event: str
    data: str


class EventReader:
    """Turns the chunks of an event stream into :class:`Event` values."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer known to hold no line end
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes, in order."""
        self._buffer += chunk
        events: list[Event] = []
        while True:
            end = self._buffer.find(b"\n", self._searched)
            if end < 0:
                self._searched = len(self._buffer)
                return events
            line = bytes(self._buffer[:end]).rstrip(b"\r").decode("utf-8", "replace")
            del self._buffer[: end + 1]
            self._searched = 0
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if not line:  # the end of an event
            if not self._data and not self._event:
                return None
            event = Event(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return None
