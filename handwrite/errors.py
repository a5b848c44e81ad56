"""The one exception type for mistakes a user can fix (bad paths, bad files).

The CLI prints these as a single line and exits with ``EXIT_INPUT``; anything
else is a bug and keeps its traceback.
"""

EXIT_OK = 0
EXIT_PARTIAL = 1  # the command ran, but some inputs failed (e.g. one unreadable image)
EXIT_INPUT = 2  # bad arguments or bad input data; nothing useful was produced
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report a SIGINT death


class HandwriteError(Exception):
    """A user-facing error: the message names the file and the problem."""
