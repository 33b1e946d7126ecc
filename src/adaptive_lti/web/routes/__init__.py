"""The HTTP routes, one module per area (LTI login and launch, the learner's journey, the
instructor's pages, designs, deep linking, registration, health).

Each handler is thin: its dependencies parse and authorise, it calls one service and returns a
template or a schema. Unsafe requests carry the page proof (``web/security.py``).
May import: what ``adaptive_lti.web`` may (services, lti, analytics, db, core) and the rest of web.
"""
