"""``python -m helpers.train``: notebook 04 unattended, its inputs built as 01-03 build them (``steps.main``). A module
of its own, which nothing imports: ``steps`` imports ``train``, and only this entry point imports ``steps``."""

import sys

from helpers.steps import main

sys.exit(main())
