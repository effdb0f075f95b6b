"""`python -m avhighlights` runs the command line."""

import sys

from avhighlights.cli.main import main

sys.exit(main())
