"""The use cases: launch, learner progress, designs, grades, roster, teaching, privacy.

Each service takes a database session and core values, calls the core, and persists what it
emits (events, snapshots, outbox rows, audit records) in the caller's transaction.
May import: ``adaptive_lti.db`` and ``adaptive_lti.core``. Services flush, never commit (the
request's dependency does), and never see HTTP requests or ORM rows from their callers.
"""
