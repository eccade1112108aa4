"""``python -m app``: the same as the ``txstream`` command."""

from app.cli import main

main()
