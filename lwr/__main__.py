"""``python -m lwr``: the same as the ``lwr`` console script."""

from lwr.cli import main

raise SystemExit(main())
