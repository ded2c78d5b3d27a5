"""`python -m shufflesearch ...` is the `shufflesearch` command."""

import sys

from .cli import main

sys.exit(main())
