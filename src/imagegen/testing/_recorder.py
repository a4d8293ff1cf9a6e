"""EventRecorder: a hook that keeps every event."""

from __future__ import annotations

from .._models import Event

__all__ = ["EventRecorder"]


class EventRecorder:
    """A hook that keeps every :class:`~imagegen.Event` it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The kinds, in order."""
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        """The events of one kind."""
        return [e for e in self.events if e.kind == kind]
