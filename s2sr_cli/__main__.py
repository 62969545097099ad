"""``python -m s2sr_cli``: the ``s2sr`` command line."""

import sys

from s2sr_cli.main import main

sys.exit(main())
