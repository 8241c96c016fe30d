"""`python -m litenas COMMAND ...`, the same as the `litenas` console script."""

import sys

from litenas.console import main

sys.exit(main())
