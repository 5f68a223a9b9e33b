"""``python -m hubbub.cluster``: the same as the ``hubbub`` command."""

import sys

from .cli import main

sys.exit(main())
