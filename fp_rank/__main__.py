"""``python -m fp_rank`` (also ``accelerate launch -m fp_rank ...``)."""

import sys

from fp_rank.cli import main

if __name__ == "__main__":
    sys.exit(main())
