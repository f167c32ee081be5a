"""``python -m strongcollapse`` = the ``strongcollapse`` command."""

import sys

from strongcollapse.orchestration.cli import main

sys.exit(main())
