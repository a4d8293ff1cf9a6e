"""fal's wire details: its hosts and where a gateway serves them, sizes, keys, queue states.

The small readers and writers :class:`~imagegen.providers.Fal` is built on: fal's three
hosts (sync runs, the queue, the Platform API) and where they are assumed to sit behind
a gateway, the ``image_size`` for a size, the key from the environment, and what a
queued request's status says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._payloads import EditFields
from ._polling import DONE, RUNNING, Progress

__all__ = [
    "APP",
    "EDIT_INPUTS",
    "NAMESPACES",
    "PLATFORM_URL",
    "QUEUE_URL",
    "RUN_URL",
    "FalRequest",
    "beside",
    "image_size",
    "key_in",
    "progress",
]

#: A fal app id: ``owner/alias[/path]``.
APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+$")
NAMESPACES = ("workflows", "comfy")  # app ids with one more leading segment
#: Apps that take an input image: its input field, and the mask's (fal takes data URIs).
EDIT_INPUTS: dict[str, EditFields] = {
    "fal-ai/flux/dev/image-to-image": ("image_url", None),
    "fal-ai/flux-pro/kontext": ("image_url", None),
    "fal-ai/flux-pro/v1/fill": ("image_url", "mask_url"),
}

#: fal's own hosts: synchronous runs, the queue, the Platform API.
RUN_URL = "https://fal.run"
QUEUE_URL = "https://queue.fal.run"
PLATFORM_URL = "https://api.fal.ai/v1"

# fal's named sizes, from fal's "common model arguments" page
# (docs.fal.ai/documentation/model-apis/model-arguments).
_PRESETS: dict[tuple[int, int], str] = {
    (1024, 1024): "square_hd",
    (512, 512): "square",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}


def beside(base_url: str, leaf: str) -> str | None:
    """Where a gateway at ``base_url`` serves the queue (``leaf="queue"``) or the Platform
    API (``leaf="v1"``); None when ``base_url`` is on fal's own host, ``fal.run``.

    It is ``base_url`` without a final ``/run`` segment, then ``/{leaf}``, the layout of
    the project's emulator (``{origin}/{instance}/run``, ``/queue``, ``/v1``):

    >>> beside("http://127.0.0.1:8765/fal/run", "queue")
    'http://127.0.0.1:8765/fal/queue'
    >>> beside("https://gw.example/fal", "v1")
    'https://gw.example/fal/v1'
    >>> beside("https://fal.run", "v1") is None
    True
    """
    parts = urlsplit(base_url)
    if parts.hostname == "fal.run":
        return None
    root = parts.path.rstrip("/").removesuffix("/run")
    return urlunsplit(parts._replace(path=f"{root}/{leaf}"))


def image_size(width: int, height: int) -> str | dict[str, int]:
    """fal's ``image_size`` for a size: the preset name on an exact match, else the pixels.

    >>> image_size(1024, 768)
    'landscape_4_3'
    >>> image_size(640, 480)
    {'width': 640, 'height': 480}
    """
    return _PRESETS.get((width, height)) or {"width": width, "height": height}


def key_in(environ: Mapping[str, str]) -> str | None:
    """``FAL_KEY``, else ``FAL_KEY_ID`` and ``FAL_KEY_SECRET`` joined with ``:``."""
    key_id, secret = environ.get("FAL_KEY_ID"), environ.get("FAL_KEY_SECRET")
    return environ.get("FAL_KEY") or (f"{key_id}:{secret}" if key_id and secret else None)


def progress(status: dict[str, Any]) -> Progress:
    """What one answer of a queued request's status URL says."""
    state = status.get("status")
    if state == "COMPLETED":
        return DONE
    if state == "IN_QUEUE":
        return Progress(note=f"queued at position {status.get('queue_position')}")
    if state == "IN_PROGRESS":
        return RUNNING
    # Unknown states are tolerated, like fal's clients do, and polled again.
    return Progress(note=f"reports status {state!r}")


@attrs.frozen
class FalRequest:
    """A queued fal request: what ``ctx.started()`` and ``cancel()`` receive.

    Args:
        request_id: fal's id for the request.
        status_url: Polled until the request is ``COMPLETED``.
        response_url: Answers with the output once completed.
        cancel_url: ``PUT`` here stops the request.
    """

    request_id: str
    status_url: str = attrs.field(repr=False)
    response_url: str = attrs.field(repr=False)
    cancel_url: str = attrs.field(repr=False)
