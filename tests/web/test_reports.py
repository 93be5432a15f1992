"""The report names the API and the console route by (``hub.web.reports.ReportName``) are the
reports there are (``hub.projections.service_reports.REPORTS``)."""

from __future__ import annotations

from typing import get_args

from hub.projections.service_reports import GROUPS_OF, REPORTS
from hub.web.reports import ReportName


def test_every_report_has_its_name_and_no_name_lacks_its_report() -> None:
    assert set(get_args(ReportName)) == set(REPORTS)
    assert set(GROUPS_OF) <= set(REPORTS)
