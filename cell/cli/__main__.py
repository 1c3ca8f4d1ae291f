"""``python -m gluecell.cell.cli``: the same as the ``gluecell`` console script."""

import sys

from gluecell.cell.cli import main

sys.exit(main())
