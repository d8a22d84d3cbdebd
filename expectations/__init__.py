"""Great Expectations suites for railpm's feeds, as code (installed as ``railpm.expectations``).

``suite_for(feed, inputs)`` builds a feed's suite from the data contracts, ``add_derived_columns`` prepares
the frame a suite reads, and ``validate_frame`` runs it with GX and returns the rows each rule rejected.
"""

from railpm.expectations.derived import add_derived_columns
from railpm.expectations.runner import SuiteVerdict, gx_context, validate_frame
from railpm.expectations.suites import ROW_ID, SUITES, SuiteInputs, rule_of, suite_for

__all__ = [
    "ROW_ID",
    "SUITES",
    "SuiteInputs",
    "SuiteVerdict",
    "add_derived_columns",
    "gx_context",
    "rule_of",
    "suite_for",
    "validate_frame",
]
