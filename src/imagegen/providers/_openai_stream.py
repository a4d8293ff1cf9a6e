"""OpenAI's streamed image answers (``"stream": true``): each partial image handed to
the caller as it arrives, then the final image as the unstreamed API answers it.

The events (Images API reference, "Image streaming"): ``image_generation.partial_image``
(``image_edit.partial_image`` for edits) with ``b64_json`` and ``partial_image_index``,
then ``image_generation.completed`` (``image_edit.completed``) with ``b64_json``,
``size``, ``quality``, ``background``, ``output_format`` and ``usage``. An event whose
data holds ``error`` ends the stream without an image.
"""

from __future__ import annotations

from typing import Any

from ._context import ProviderContext
from ._payloads import decode_base64, json_or_none
from ._sse import EventReader

__all__ = ["ImageStream"]


class ImageStream:
    """Reads one streamed answer; :meth:`feed` is the request's ``on_chunk``."""

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._reader = EventReader()
        self._final: dict[str, Any] | None = None
        #: The ``error`` object of an error event (or the event itself), if one came.
        self.error: dict[str, Any] | None = None

    async def feed(self, chunk: bytes) -> None:
        """Take one piece of the answer; previews go to the caller at once."""
        for event in self._reader.feed(chunk):
            payload = json_or_none(event.data)
            if not isinstance(payload, dict):
                continue
            kind = str(payload.get("type") or event.event)
            if "error" in payload or kind == "error":
                error = payload.get("error")
                self.error = error if isinstance(error, dict) else payload
            elif kind.endswith(".partial_image"):
                data = decode_base64(str(payload.get("b64_json") or ""))
                index = payload.get("partial_image_index")
                if data and isinstance(index, int) and not isinstance(index, bool):
                    await self._ctx.preview(data, index)
            elif kind.endswith(".completed"):
                self._final = payload

    def answer(self) -> dict[str, Any] | None:
        """The final image as ``POST /images/generations`` answers without streaming
        (``created``, ``data: [{b64_json}]``, ``size``, ``usage``...); None when the
        stream brought none."""
        final = self._final
        if final is None:
            return None
        answer = {k: v for k, v in final.items() if k not in ("type", "b64_json", "created_at")}
        answer["created"] = final.get("created_at")
        answer["data"] = [{"b64_json": final.get("b64_json")}]
        return answer
