"""``python -m pytest_cdc.report``: build the offline Allure report (see :mod:`.html`)."""

import sys

from pytest_cdc.report.html import main

sys.exit(main())
