"""``python -m pointforge`` = the ``pointforge`` console script (also used by torchrun)."""

import sys

from pointforge.cli.main import main

sys.exit(main())
