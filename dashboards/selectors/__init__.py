"""Read models of the dashboards app: calendar, board and metrics (one module each)."""

from datetime import date

# The dates a page, feed or series may be asked about. The reads step through the days,
# weeks and months around them, which near year 1 or 9999 would leave Python's dates (a
# 500 instead of an answer); the forms drop such a date, the API answers 400.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)
