"""``python -m perimeterdb``: the same command as the ``perimeterdb`` script."""

from perimeterdb.cli import main

raise SystemExit(main())
