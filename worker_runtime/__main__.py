"""``python -m leasq_worker MODULE:REGISTRY [options]``."""

import sys

from leasq_worker.cli import main

sys.exit(main())
