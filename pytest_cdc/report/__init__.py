"""The Allure report of a run: what goes into it and how it is built.

- :mod:`pytest_cdc.report.labels`: Gherkin tags -> Allure labels; the stack as the environment.
- :mod:`pytest_cdc.report.evidence`: attachments (JSON samples, HTML tables, PNG plots, text).
- :mod:`pytest_cdc.report.html`: the offline single-file HTML report
  (``python -m pytest_cdc.report``).
"""
