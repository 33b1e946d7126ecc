"""The learner's journey, by use case: from a launch to the next activity, answer by answer, to
the grade, and what instructors do with it.

    launching        a launch: find or create the enrolment, learn what the launch says, decide
    reading          the enrolment, its design and snapshot; rebuilding a snapshot from the log
    recording        one event in, the next decision out (and the score for the gradebook)
    learner_actions  intake answers, check answers, completions and choices from the pages
    instructing      the enrolment list, why a learner was routed so, override and reset

May import: ``core``, ``db`` and the other services (designs, grades). Services flush, never
commit: the request's dependency commits.
"""
