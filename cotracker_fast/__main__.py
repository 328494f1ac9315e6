"""``python -m cotracker_fast``: the ``cotracker-fast`` command line (:func:`cotracker_fast.cli.main`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
