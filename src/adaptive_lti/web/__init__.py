"""The FastAPI application: the app factory, dependencies, routes, templates and static files.

Lives here: dependencies that parse, authenticate and authorise (launch, instructor, session);
thin routes (``routes/``) that call one service each; the single place where domain errors
become HTTP statuses and pages (``errors.py``); the page proof against forged requests and the
security headers (``security.py``); input limits checked before any query; observability
(request ids, logs, ``/metrics``); the score-delivery worker thread; Jinja2 templates.
May import: services, lti, analytics, db, core and settings. No queries here: reads and writes
go through services and repositories.
"""
