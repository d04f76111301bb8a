"""``python -m pipeline.cli``: the ``gnn2gnn`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
