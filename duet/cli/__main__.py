"""``python -m duet.cli``: the ``duet`` command."""

import sys

from duet.cli import main

sys.exit(main())
