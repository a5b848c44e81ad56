"""The one exception type for mistakes a user can fix (bad paths, bad files).

The CLI prints these as a single line and exits with ``EXIT_INPUT``; a file
that cannot be written (disk full, no permission) exits with ``EXIT_IO``;
anything else is a bug: its traceback is printed and the exit code is
``EXIT_INTERNAL``, so that a script can tell a crash from partial success.
"""

EXIT_OK = 0
EXIT_PARTIAL = 1  # the command ran, but some inputs failed (e.g. one unreadable image)
EXIT_INPUT = 2  # bad arguments or bad input data; nothing useful was produced
EXIT_INTERNAL = 70  # a bug in handwrite (sysexits' EX_SOFTWARE)
EXIT_IO = 74  # a file could not be read or written: disk full, permissions (sysexits' EX_IOERR)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report a SIGINT death


class HandwriteError(Exception):
    """A user-facing error: the message names the file and the problem."""


def check_number(
    name: str, value, low=None, high=None, *, integer: bool = False, low_open: bool = False, optional: bool = False
) -> None:
    """The one range rule for a setting, used by every config object (so the CLI and Python callers
    get the same check): a finite number (an int when ``integer``) within [low, high] ((low, high]
    when ``low_open``); ``None`` passes when ``optional``."""
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise HandwriteError(f"{name} must be {'an integer' if integer else 'a number'} (got {value!r})")
    if value != value or value in (float("inf"), float("-inf")):
        raise HandwriteError(f"{name} must be a finite number (got {value!r})")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        left = f"> {low}" if low_open else f">= {low}"
        bounds = " and ".join(
            b for b in ((left if low is not None else ""), (f"<= {high}" if high is not None else "")) if b
        )
        raise HandwriteError(f"{name} must be {bounds} (got {value!r})")
