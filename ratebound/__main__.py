"""``python -m ratebound``: the ``ratebound`` command."""

import sys

from ratebound.cli import main

sys.exit(main())
