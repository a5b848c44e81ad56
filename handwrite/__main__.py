"""``python -m handwrite``: the CLI, also as torchrun starts it (``torchrun ... -m handwrite train ...``)."""

from .cli import app

app(prog_name="handwrite")
