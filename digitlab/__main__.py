"""Entry point for ``python -m digitlab``."""

import sys

from digitlab.cli import main

sys.exit(main())
