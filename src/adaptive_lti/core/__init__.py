"""The pure core: the design language, the learner model, the routing engine, the simulator.

Lives here: the design models and their JSON Schema, the YAML loader (errors with line and
column), the condition language, the linter, the learner model (attributes, outcomes, mastery),
the routing engine with its explanations (``constructs/``: one module per route construct, its
walk, lint rules and loading hooks behind ``constructs.base.Construct``),
replay and migration between versions, the simulator, the route drawing, and the domain error
tree (``errors.py``).
May import: only the standard library, pydantic, PyYAML and lark (an import-linter contract
checks it). No I/O, no clock, no settings, no SQLAlchemy, no HTTP: time and randomness are
arguments, and values in and out are immutable.
"""
