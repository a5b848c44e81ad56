"""Ctrl-C and SIGTERM: who meets them while handwrite trains or writes a file.

Training stops at a step boundary on either (handwrite.training), and a checkpoint being written holds
them until the file is whole (handwrite.checkpoint). Both go through :func:`install`, which leaves alone
a signal the process ignores: a job started with ``nohup``, or with ``&`` from a script, ignores SIGINT,
and a handler installed over that would make it stop on a signal it was meant not to see.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install(handler) -> dict:
    """``handler`` for each stop signal the process does not ignore; returns what :func:`restore` puts
    back. Nothing in a thread other than the main one, where signal() does not work."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN}


def restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def held():
    """Ctrl-C and SIGTERM held back inside the block, then delivered to the handler they would have met.
    torch.save writes through a C++ zip writer that calls back into the file object: a KeyboardInterrupt
    raised there left its records half-written, and its end-of-file check then raised a RuntimeError in
    place of the interrupt, or, the file closed meanwhile, aborted the process at exit (-6, "write to
    closed file"; seen once in tests/test_faults.py)."""
    caught: list[int] = []
    previous = install(lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        restore(previous)
    if caught:
        signal.raise_signal(caught[0])
