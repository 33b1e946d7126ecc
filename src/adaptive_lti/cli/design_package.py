"""The design package ``design export`` writes and ``design import`` reads: one zip file.

Inside: ``manifest.json`` (the format, the design id and, per version, where its files are) and,
for each version N, ``vN/design.yaml`` (the YAML exactly as published) beside the Markdown of
the pages the design keeps in files, ``vN/pages/ACTIVITY.md``. Nothing in a package is ever
written to disk on import: members are read by the names the manifest gives, with a size limit.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptive_lti.core.catalogue import DesignVersionInfo
from adaptive_lti.core.errors import InvalidInputError
from adaptive_lti.core.loader import MAX_DESIGN_BYTES

FORMAT = "adaptive-lti-design-package/1"
MANIFEST = "manifest.json"
MAX_VERSIONS = 1000


def write_package(path: Path, versions: list[DesignVersionInfo]) -> None:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "design": versions[0].design_id,
        "title": versions[-1].title,
        "versions": [],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for version in versions:
            folder = f"v{version.version}"
            pages = {
                activity_id: f"{folder}/pages/{activity_id}.md"
                for activity_id in sorted(version.page_bodies)
            }
            archive.writestr(f"{folder}/design.yaml", version.source_text)
            for activity_id, name in pages.items():
                archive.writestr(name, version.page_bodies[activity_id])
            manifest["versions"].append(
                {
                    "version": version.version,
                    "design": f"{folder}/design.yaml",
                    "pages": pages,
                    "content_hash": version.content_hash,
                    "published_at": version.published_at.isoformat(),
                    "published_by": version.published_by,
                }
            )
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    # Written whole at the end, so a failure leaves no half-written package behind.
    path.write_bytes(buffer.getvalue())


def _not_a_package(path: Path, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path} is not a design package: {why}.",
        hint="Give the file 'adaptive-lti design export ID --platform P -o FILE' wrote.",
    )


def _member(archive: zipfile.ZipFile, path: Path, name: Any) -> str:
    if not isinstance(name, str):
        raise _not_a_package(path, "its manifest names a file with something not a name")
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _not_a_package(path, f"{name} is missing from it") from None
    if info.file_size > MAX_DESIGN_BYTES:
        raise _not_a_package(path, f"{name} is larger than a design may be")
    try:
        with archive.open(info) as member:
            return member.read(MAX_DESIGN_BYTES + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_a_package(path, f"{name} is not UTF-8 text") from None
    except (zipfile.BadZipFile, OSError, RuntimeError) as error:
        raise _not_a_package(path, f"{name} cannot be read ({error})") from None


def read_package(path: Path) -> list[tuple[str, str, Mapping[str, str]]]:
    """(file name for messages, YAML, page bodies by activity id) per version, oldest first."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InvalidInputError(
            f"{path} does not exist.", hint="Check the path of the package."
        ) from None
    except (zipfile.BadZipFile, OSError) as error:
        raise _not_a_package(path, f"it is not a zip file ({error})") from None
    with archive:
        try:
            manifest = json.loads(_member(archive, path, MANIFEST))
        except json.JSONDecodeError as error:
            raise _not_a_package(path, f"its manifest is not JSON ({error})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _not_a_package(path, f"its manifest does not say format {FORMAT!r}")
        entries = manifest.get("versions")
        if not isinstance(entries, list) or not entries or len(entries) > MAX_VERSIONS:
            raise _not_a_package(path, "its manifest lists no versions")
        result: list[tuple[str, str, Mapping[str, str]]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("pages", {}), dict):
                raise _not_a_package(path, "a version in its manifest is malformed")
            name = entry.get("design")
            source = _member(archive, path, name)
            pages = {
                str(activity_id): _member(archive, path, member)
                for activity_id, member in entry.get("pages", {}).items()
            }
            result.append((f"{path.name}:{name}", source, pages))
    return result
