"""SIGINT and SIGTERM during a sweep: the first stops it after the running chunk, the second at once.

Python runs a signal handler only when the main thread executes bytecode, and a sweep's main thread
spends its time inside compiled XLA calls: a handler alone would see both signals only when the
chunk returns, by then one after the other (the second coalesced into the first), and could not
report the first until then either. So the handlers installed here do nothing themselves; the byte
the interpreter's C-level handler writes to the wakeup fd (`signal.set_wakeup_fd`) is read by a
watcher thread, which reacts at once:

* the first signal is announced and recorded: `check()` raises SweepInterrupted at the next safe
  point (before the sweep starts writing, or after the running chunk is written);
* the second waits for any file write in flight (store.WRITE_LOCK), removes this process's
  temporary files and ends the process with os._exit(130), so no XLA destructor can hang it.

`install()` at the start of the `condense` command also covers the seconds spent importing JAX; a
sweep run from Python installs it for the duration of the sweep (`guard`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODE = 130


class SweepInterrupted(KeyboardInterrupt):
    """The first SIGINT or SIGTERM arrived; the sweep stopped at a safe point (exit 130 from the CLI)."""


class _State:
    def __init__(self):
        self.first: str | None = None
        self.installed = False
        self.saved: dict = {}
        self.old_fd = -1
        self.pipe: tuple[int, int] | None = None


_state = _State()


def requested() -> str | None:
    """The name of the first signal received since install(), or None."""
    return _state.first


def check(where: str) -> None:
    """Raise SweepInterrupted if a first signal has arrived; `where` completes the message."""
    if _state.first is not None:
        raise SweepInterrupted(f"{_state.first}: {where}")


def _abort(name: str) -> None:
    from . import store

    acquired = store.WRITE_LOCK.acquire(timeout=30)  # a file write in flight finishes (or is cut off)
    try:
        store.remove_own_temporaries()
    finally:
        print(f"condense: {name} again: aborted at once; the finished chunks are kept, rerun with --resume to "
              "complete the sweep", file=sys.stderr, flush=True)
        os._exit(EXIT_CODE)
    if acquired:  # unreachable: os._exit does not return
        store.WRITE_LOCK.release()


def _watch(fd: int) -> None:
    while True:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data:  # uninstall() closed the other end
            os.close(fd)
            return
        for b in data:
            if b not in SIGNALS:
                continue
            name = signal.Signals(b).name
            if _state.first is None:
                _state.first = name
                print(f"condense: {name}: finishing the running chunk, then stopping (send it again to abort at once)",
                      file=sys.stderr, flush=True)
            else:
                _abort(name)


def install() -> bool:
    """Route SIGINT and SIGTERM to the watcher (main thread only; returns False elsewhere, or when
    already installed)."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return False
    r, w = os.pipe()
    os.set_blocking(w, False)
    _state.old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for sig in SIGNALS:
        _state.saved[sig] = signal.signal(sig, lambda signum, frame: None)  # the watcher acts
    _state.pipe = (r, w)
    _state.first = None
    _state.installed = True
    threading.Thread(target=_watch, args=(r,), name="condense-signals", daemon=True).start()
    return True


def uninstall() -> None:
    """Give SIGINT and SIGTERM back to the handlers they had before install()."""
    if not _state.installed:
        return
    for sig, old in _state.saved.items():
        signal.signal(sig, old)
    signal.set_wakeup_fd(_state.old_fd)
    r, w = _state.pipe
    os.close(w)  # the watcher reads EOF and ends
    _state.saved, _state.pipe, _state.installed, _state.first = {}, None, False, None


@contextlib.contextmanager
def guard():
    """Signals handled as above for the duration (no-op if the command already installed them)."""
    mine = install()
    try:
        yield
    finally:
        if mine:
            uninstall()
