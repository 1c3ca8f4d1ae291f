"""Running the simulated cell: in its own process (``gluecell sim``) or on a background thread (tests, bench)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cell import SimCell

__all__ = ["SimHandle", "SimProcess", "serve_forever", "spawn_sim", "start_in_thread"]


@dataclass
class SimHandle:
    """A simulated cell running on its own thread and event loop. ``stop()`` ends both."""

    cell: SimCell
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The rosbridge port on 127.0.0.1."""
        return self.cell.port

    def call(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run ``fn()`` on the cell's loop (a coroutine function is awaited) and return its result."""

        async def _run() -> Any:
            out = fn()
            return await out if asyncio.iscoroutine(out) else out

        return asyncio.run_coroutine_threadsafe(_run(), self.loop).result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the cell and its thread."""
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.cell.stop(), self.loop).result(timeout_s)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout_s)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(cell: SimCell, timeout_s: float = 10.0) -> SimHandle:
    """Start ``cell`` on a new daemon thread; returns once it serves."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failed: list[BaseException] = []

    def _main() -> None:
        asyncio.set_event_loop(loop)

        async def _start() -> None:
            try:
                await cell.start()
            except BaseException as exc:
                failed.append(exc)
            finally:
                ready.set()

        task = loop.create_task(_start())
        loop.run_forever()
        del task
        loop.close()

    thread = threading.Thread(target=_main, name="gluecell-sim", daemon=True)
    thread.start()
    if not ready.wait(timeout_s) or failed:
        raise RuntimeError(f"simulated cell did not start: {failed[0] if failed else 'timeout'}")
    return SimHandle(cell, loop, thread)


async def serve_forever(cell: SimCell, on_ready: Callable[[int], None] | None = None) -> None:
    """Serve until cancelled (Ctrl-C / SIGTERM in ``gluecell sim``)."""
    await cell.start()
    if on_ready is not None:
        on_ready(cell.port)
    try:
        await asyncio.Event().wait()
    finally:
        await cell.stop()


@dataclass
class SimProcess:
    """``gluecell sim`` running as its own process (the embedded default: the controller may be killed and
    restarted while the cell goes on). ``stop()`` sends SIGTERM and waits."""

    proc: Any
    port: int

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop it; returns its exit code."""
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return int(self.proc.returncode)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_sim(args: list[str], timeout_s: float = 120.0) -> SimProcess:
    """Start ``gluecell sim --port 0 <args>`` (e.g. ``["--speed", "20", "--world", DIR]``); returns once it serves.

    Raises:
        RuntimeError: it exited or did not report its port within ``timeout_s`` (its output is in the message).
    """
    import re
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "gluecell.cell.cli", "sim", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    found: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
            if m:
                found.append(int(m.group(1)))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not found:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"gluecell sim did not start: {''.join(seen)[-2000:]}")
    return SimProcess(proc, found[0])
