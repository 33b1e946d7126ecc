"""What instructors see in aggregate: who took which route, and how those learners are doing.

SQL-first: each count is one ``GROUP BY`` over the learners' snapshots rather than rows in Python,
per design version, on SQLite and PostgreSQL alike, each query scoped by the tenant.
May import: ``adaptive_lti.db`` and ``adaptive_lti.core``.
"""
