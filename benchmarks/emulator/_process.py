"""The emulator in a child process, started and driven over HTTP from this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from ._base import _check_name, _EmulatorBase
from ._profiles import Fault, ProviderProfile
from ._stats import ProviderStats


class EmulatorProcess(_EmulatorBase):
    """The emulator in a child process (``python -m benchmarks.emulator``), driven over HTTP.

    ``with EmulatorProcess(profiles) as emu:`` starts it on a free port and waits
    until it listens; leaving the block stops it (SIGTERM, then SIGKILL after 5 s).
    The control methods mirror :class:`Emulator`'s, as blocking HTTP calls to its
    ``/_emulator`` routes: call them between measurements, not inside them.

    Args:
        profiles: As for :class:`Emulator`.
        backend: The child's event loop, ``asyncio`` or ``trio``.
    """

    def __init__(
        self, profiles: Mapping[str, ProviderProfile] | None = None, *, backend: str = "asyncio"
    ) -> None:
        super().__init__(profiles)
        self.backend = backend
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self._config: Path | None = None

    def __enter__(self) -> EmulatorProcess:
        handle, path = tempfile.mkstemp(prefix="imagegen-emulator-", suffix=".json")
        self._config = Path(path)
        os.close(handle)
        config = {"providers": {n: p.to_dict() for n, p in self._profiles.items()}}
        self._config.write_text(json.dumps(config), encoding="utf-8")
        root = Path(__file__).resolve().parents[2]
        command = [sys.executable, "-m", "benchmarks.emulator", "--port", "0"]
        self._proc = subprocess.Popen(
            [*command, "--config", path, "--backend", self.backend],
            cwd=root,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if " listening on " not in line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.origin = line.rsplit(" ", 1)[1]
        self._client = httpx.Client(base_url=f"{self.origin}/_emulator", timeout=10.0)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._config is not None:
            self._config.unlink(missing_ok=True)
            self._config = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the child has used so far; None off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self._client is not None, "use EmulatorProcess inside `with`"
        response = self._client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def stats(self, name: str) -> ProviderStats:
        """Instance ``name``'s counters."""
        return ProviderStats.from_dict(self._call("GET", f"/stats/{name}"))

    def all_stats(self) -> dict[str, ProviderStats]:
        """Every instance's counters."""
        return {n: ProviderStats.from_dict(s) for n, s in self._call("GET", "/stats").items()}

    def force(self, name: str, fault: Fault | None, count: int = 1) -> None:
        """As :meth:`Emulator.force`."""
        value = None if fault is None else fault.value
        self._call("POST", "/force", {"provider": name, "fault": value, "count": count})

    def set_profile(self, name: str, profile: ProviderProfile) -> None:
        """As :meth:`Emulator.set_profile`."""
        _check_name(name)
        self._call("PUT", f"/profiles/{name}", profile.to_dict())
        self._profiles[name] = profile

    def reset(self, name: str | None = None) -> None:
        """As :meth:`Emulator.reset`."""
        self._call("POST", "/reset", {"provider": name})
