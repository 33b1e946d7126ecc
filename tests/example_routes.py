"""The routes ``examples/intro-programming`` promises (its README and the scenario's personas),
as the activities a learner meets, for the tests that walk them at every layer (core, services,
over HTTP)."""

FOUNDATIONS = [
    "variables-lesson",
    "variables-check",
    "conditionals-lesson",
    "conditionals-check",
    "loops-lesson",
    "loops-check",
]
STANDARD = ["conditionals-lesson", "conditionals-check", "loops-lesson", "loops-check"]
# Dara's loops: two remedial rounds, still below the mark, then the support activity.
TWO_REMEDIAL_ROUNDS_THEN_SUPPORT = [
    "loops-lesson",
    "loops-check",
    "loops-remedial",
    "loops-check",
    "loops-remedial",
    "loops-check",
    "loops-support",
]
