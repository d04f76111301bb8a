"""``python -m analysis tables|figures|report --results R [--out O]``: the same commands as
``gnn2gnn tables|figures|report``."""

import sys

from analysis.cli import main

if __name__ == "__main__":
    sys.exit(main())
