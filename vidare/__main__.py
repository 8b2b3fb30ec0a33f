"""``python -m vidare``: the same as the ``vidare`` console script."""

import sys

from vidare.cli import main

sys.exit(main())
