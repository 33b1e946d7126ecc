"""The use cases, one module (or package) each, small enough to read in one sitting.

    launch              a verified launch: who, where, which deployment; what it records
    journey/            the learner's journey: launching, reading, recording, learner actions,
                        and what instructors do with it (see its docstring)
    design_publishing   checking and publishing designs, their versions and owners
    design_bindings     which design an activity runs (deep linking, custom parameter, chosen)
    design_sharing      exporting a design's versions and importing them into another tenant
    grades              the score outbox and its delivery to the platform's gradebook (AGS)
    roster              the course's members from the platform (NRPS)
    teaching_course     the instructor's activity page and the roster sync
    teaching_learner    one learner's trace, and moving or resetting a learner
    privacy             a person's data: export and erasure

Each service takes a database session and core values, calls the core, and persists what it
emits (events, snapshots, outbox rows, audit records) in the caller's transaction.
May import: ``adaptive_lti.db`` and ``adaptive_lti.core``. Services flush, never commit (the
request's dependency does), and never see HTTP requests or ORM rows from their callers.
"""
