"""Pure governance rules: freeze-window recurrence, CAB quorum, explained risk.

Nothing in this package imports Django or touches the database.  Models and
services translate their rows into these dataclasses and act on the results, so
the rules can be tested exhaustively (including property-based tests) without a
database, and reused by the API, the calendar and background tasks alike.
"""
