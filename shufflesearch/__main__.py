"""`python -m shufflesearch ...` is the `shufflesearch` command."""

import sys

from shufflesearch.cli import main

sys.exit(main())
