"""``python -m app``: the same as the ``txstream`` command."""

from app.commands.cli import main

main()
