"""The pure core: the design language, the learner model, the routing engine, the simulator.

Imports only the standard library, pydantic, PyYAML and lark (an import-linter contract checks it).
No I/O, no clock, no settings: time and randomness are arguments.
"""
