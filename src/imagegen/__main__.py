"""``python -m imagegen``: the same as the ``imagegen`` command."""

import sys

from ._cli import main

sys.exit(main())
