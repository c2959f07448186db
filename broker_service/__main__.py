"""``python -m leasq_broker``: the same as the ``leasq`` command."""

from __future__ import annotations

import sys

from leasq_broker.cli import main

if __name__ == "__main__":
    sys.exit(main())
