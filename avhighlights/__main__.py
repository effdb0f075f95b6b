"""`python -m avhighlights` runs the command line."""

import sys

from avhighlights.cli import main

sys.exit(main())
