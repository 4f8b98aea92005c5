"""The `condense` executable and `python -m condense_jax.cli`: SIGINT and SIGTERM are routed to
engine/interrupts before anything else is imported.

Python raises KeyboardInterrupt wherever the main thread is when a Ctrl-C arrives. Installed in
cli.main, the handling came after the package's own imports, and a Ctrl-C during them (the first
~0.1 s, longer on a busy machine) ended in a traceback and exit −2 (tests/test_signals.py). Here it
is the first thing done (the package's `__init__` imports nothing): a signal at any moment of
start-up is recorded, and the command stops before it writes anything (exit 130, one line).
"""

from __future__ import annotations


def main(argv=None) -> int:
    from .engine import interrupts  # os, signal, threading: nothing heavy

    mine = interrupts.install()
    try:
        from . import cli

        return cli.main(argv)
    finally:
        if mine:
            interrupts.uninstall()
