"""``python -m runner`` is the ``qfrun`` command."""

from runner.cli import main

main()
