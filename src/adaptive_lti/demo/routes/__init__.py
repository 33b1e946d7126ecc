"""HTTP routes of the built-in demo LTI platform (protocol in ``demo/platform.py``), one module
per area, each with its own router:

    launches             home page, launch buttons, OIDC authorization, JWKS, the course page
    service_endpoints    OAuth 2 token, AGS (line items, scores, results), NRPS, the gradebook
    deep_linking_pages   the teacher's "Add an activity" and its return address
    registration_pages   "Manage tools": dynamic registration, activation, launching a tool
    common               templates, static files, the ``app.state`` dependencies, shared pages
    mounting             ``mount``: what the app factory's hook (``cli/app.py``) calls

Mounted only when ``Settings.demo_platform`` is on; the tool never imports it.
"""
