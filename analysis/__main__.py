"""``python -m analysis tables|figures|report --results DIR``: same as ``gnn2gnn <command>``."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
