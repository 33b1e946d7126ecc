"""The demo LTI 1.3 platform: a small stand-in VLE that behaves like Moodle 4.5, for the demo and
the end-to-end tests. It is a separate site from the tool, served in the same process.

- ``platform``: the launch (OIDC login, id_token claims and signing), its people, course, keys;
- ``services``: the platform's side of AGS and NRPS (token endpoint, gradebook, memberships);
- ``deep_linking``, ``dynamic_registration``: the teacher's "Add an activity" and the
  administrator's "Manage tools";
- ``store``: what the platform keeps between requests (a JSON file beside its key);
- ``routes``: its HTTP routes, templates and static files, and ``mount``;
- ``tool_link``: the one seam to the tool (``ToolLink``), answered by ``cli/demo_link.py``.

It imports nothing of the tool but ``core`` (shared vocabulary: errors, registration records),
and nothing of the tool imports it but ``cli``, which mounts it through the app factory's hook
(``cli/app.py``). Both directions are import-linter contracts in ``pyproject.toml``.
"""
