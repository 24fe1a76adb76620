"""The recorder in a thread of its own (its event loop there), so that the main thread keeps Ctrl-C and, for
``indicators live``, runs the follower beside it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ..config import Config
from .recorder import Recorder


class RecorderThread(threading.Thread):
    """:meth:`start`, then :meth:`stop` (from any thread): every received push is on disk when it returns."""

    def __init__(self, vault: Path, cfg: Config, keep_delays: bool = False) -> None:
        super().__init__(name="indicator-core-record", daemon=True)
        self.recorder = Recorder(vault, cfg, keep_delays=keep_delays)
        self.error: BaseException | None = None
        self.ready = threading.Event()  # the sessions are started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that stops this one
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.recorder.run(self._stop_event, ready=self.ready.set)

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop = self._loop, self._stop_event
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop ended on its own (an error): nothing to stop
                pass
        self.join(timeout)
