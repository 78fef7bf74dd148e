"""Read models of the dashboards app: calendar, board and metrics (one module each)."""
