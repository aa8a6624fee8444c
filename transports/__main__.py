"""``python -m transports`` runs the ``esmtp`` command line."""

import sys

from .cli import main

sys.exit(main())
