"""adaptive-lti: an LTI 1.3 tool that routes each learner along a YAML learning design.

The packages are layers; an arrow is "may import" (import-linter contracts in pyproject.toml):
cli -> web -> services | lti | analytics -> db -> core. ``settings.py`` is the one settings class
(``ADAPTIVE_LTI_`` environment variables) and ``metrics.py`` the Prometheus counters; neither is
imported by core. The demo platform (``demo/``) is not part of the tool: it talks to the tool over
HTTP only, and the tool never imports it.
"""

__version__ = "0.1.0"
