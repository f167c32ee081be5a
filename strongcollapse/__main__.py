"""``python -m strongcollapse`` = the ``strongcollapse`` command."""

import sys

from strongcollapse.cli import main

sys.exit(main())
