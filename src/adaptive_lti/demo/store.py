"""What the demo platform keeps besides its gradebook: the activities teachers added by deep
linking, the deep-linking response nonces it has seen, and the tools administrators registered by
dynamic registration (with their single-use registration tokens).

Like the gradebook (``services.DemoGradebook``) it is a JSON file beside the demo's
database, locked while read or changed and replaced atomically, so it survives a restart and is
shared by the processes of one demo. Moodle keeps the same things in its own tables
(``course_modules``/``lti``, ``lti_types``/``lti_types_config``); the tool's database is not the
platform's, so none of this goes there.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STORE_FILE_NAME = "demo-platform-state.json"


def _initial() -> dict[str, Any]:
    return {
        "activities": [],
        "deep_linking_nonces": {},
        "registration_tokens": {},
        # Registration tokens (by digest) that update an existing tool: its client id.
        "registration_update_tokens": {},
        "tool_registrations": [],
        # Plays Moodle's default cURL security (curlsecurityblockedhosts holding 127.0.0.0/8 and
        # localhost): the platform cannot fetch the tool's keys, so token requests and
        # deep-linking returns fail with Moodle's HTML error pages.
        "curl_blocks_tool": False,
    }


class LockedJsonDocument:
    """A JSON document under an exclusive (write) or shared (read) file lock, starting as
    ``initial()`` and replaced atomically when changed. The store and the gradebook are two."""

    def __init__(self, path: Path, initial: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._initial = initial

    @contextmanager
    def locked(self, *, write: bool) -> Iterator[dict[str, Any]]:
        """The stored document; changes made to it are saved when ``write`` and no error left
        the block (an error leaves the file as it was)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                data = self._initial()
                if self.path.exists():
                    data.update(json.loads(self.path.read_text(encoding="utf-8")))
                yield data
                if write:
                    # Write beside and rename: a crash never leaves half a document.
                    descriptor, temporary = tempfile.mkstemp(dir=self.path.parent)
                    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                        json.dump(data, handle, indent=1, sort_keys=True)
                    os.replace(temporary, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class DemoPlatformStore(LockedJsonDocument):
    """What the platform keeps besides its gradebook (this module's docstring)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _initial)


# Moodle's words when its cURL security stops it fetching the tool's key set (it gets null
# instead of a JWKS and its jwks_helper fails on it).
MOODLE_JWKS_FETCH_FAILURE = (
    "Exception - mod_lti\\local\\ltiopenid\\jwks_helper::fix_jwks_alg(): Argument #1 ($jwks) "
    "must be of type array, null given"
)


def curl_blocks_tool(store: DemoPlatformStore) -> bool:
    with store.locked(write=False) as data:
        return bool(data["curl_blocks_tool"])


def set_curl_blocks_tool(store: DemoPlatformStore, blocked: bool) -> None:
    with store.locked(write=True) as data:
        data["curl_blocks_tool"] = blocked
