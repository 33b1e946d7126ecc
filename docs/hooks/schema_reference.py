"""MkDocs hook: the design-language reference page, rendered from the JSON Schema at build time.

The page (``designers/reference.md``) is not a file in docs/: it is made on every build from
``adaptive_lti.core.design.json_schema()``, the same schema ``adaptive-lti schema`` prints for
editors, so the reference cannot drift from what the loader accepts. Each object of the schema
(the design itself, then every ``$defs`` entry) becomes a section with one row per field: its
type, whether it is required, its default, allowed values and limits, and its description.
"""

from __future__ import annotations

import json
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from adaptive_lti.core.design import json_schema

REFERENCE_PAGE = "designers/reference.md"

INTRODUCTION = """\
# Design language reference

This page is generated, on every build of this site, from the JSON Schema of design files (the
one `adaptive-lti schema` prints for editors), so it always says what the loader accepts. The
[guide to writing a design](design-language.md) explains how the parts work together; the
[checker](checker.md) catches what a schema cannot (unknown activities, routes that strand
learners, conditions that never hold).

A field marked *required* must be in the file; any other field may be left out and then takes
its default. Unknown keys are refused with the nearest allowed one.
"""


def render_reference(schema: dict[str, Any]) -> str:
    """The Markdown reference for a design JSON Schema: the top level first, then each definition."""
    definitions: dict[str, Any] = schema.get("$defs", {})
    sections = [INTRODUCTION, _section("The design file", "design-file", schema)]
    for name in _in_reading_order(schema, definitions):
        sections.append(_section(name, _anchor(name), definitions[name]))
    return "\n".join(sections)


def _in_reading_order(schema: dict[str, Any], definitions: dict[str, Any]) -> list[str]:
    """Definitions in the order a reader meets them from the top of the file (breadth first),
    then any the schema defines but nothing references, by name."""
    order: list[str] = []
    queue = _references(schema)
    while queue:
        name = queue.pop(0)
        if name in definitions and name not in order:
            order.append(name)
            queue.extend(_references(definitions[name]))
    return order + sorted(set(definitions) - set(order))


def _references(node: Any) -> list[str]:
    """The definition names a schema node refers to, in document order (not below $defs)."""
    if isinstance(node, dict):
        found: list[str] = []
        for key, value in node.items():
            if key == "$defs":
                continue
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            else:
                found.extend(_references(value))
        return found
    if isinstance(node, list):
        return [name for item in node for name in _references(item)]
    return []


def _section(title: str, anchor: str, node: dict[str, Any]) -> str:
    lines = [f"## {title} {{#{anchor}}}", ""]
    description = node.get("description")
    if description:
        lines += [_one_line(description), ""]
    properties: dict[str, Any] = node.get("properties", {})
    if not properties:
        # An enumeration or a plain type: say what values it takes.
        lines += [f"Type: {_type_of(node)}.", ""]
        allowed = _allowed(node)
        if allowed:
            lines += [f"Allowed: {allowed}.", ""]
        return "\n".join(lines)
    required = set(node.get("required", []))
    # The description column only where the schema describes some field (pydantic fields
    # without a description would otherwise leave an empty column on every row).
    described = any(spec.get("description") for spec in properties.values())
    header = ["field", "type", "required", "default", "allowed values and limits"]
    lines += [
        "| " + " | ".join(header + ["description"] * described) + " |",
        "|" + "---|" * (len(header) + described),
    ]
    for field, spec in properties.items():
        default = f"`{_json(spec['default'])}`" if "default" in spec else ""
        cells = [
            f"`{field}`",
            _type_of(spec),
            "required" if field in required else "optional",
            default,
            _allowed(spec),
        ]
        if described:
            cells.append(_one_line(spec.get("description", "")))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _type_of(spec: dict[str, Any]) -> str:
    """A reader's type: links to definitions, lists and maps spelled out."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "discriminator" in spec and "oneOf" in spec:
        mapping = spec["discriminator"]["mapping"]
        kinds = ", ".join(
            f"`{spec['discriminator']['propertyName']}: {kind}` → {_type_of({'$ref': ref})}"
            for kind, ref in mapping.items()
        )
        return f"one of {kinds}"
    for combinator in ("anyOf", "oneOf"):
        if combinator in spec:
            return " or ".join(_type_of(option) for option in spec[combinator])
    kind = spec.get("type")
    if kind == "array":
        return f"list of {_type_of(spec.get('items', {}))}"
    if kind == "object":
        values = spec.get("additionalProperties")
        patterns = spec.get("patternProperties", {})
        if patterns:
            pattern, value = next(iter(patterns.items()))
            return f"map of id (`{pattern}`) to {_type_of(value)}"
        if isinstance(values, dict):
            return f"map of name to {_type_of(values)}"
        return "mapping"
    if kind == "null":
        return "nothing (`null`)"
    if "enum" in spec:
        return "one of the allowed values"
    if "const" in spec:
        return f"`{_json(spec['const'])}`"
    return str(kind) if kind else "any value"


def _allowed(spec: dict[str, Any]) -> str:
    """Enumerated values and numeric or length limits, from the spec and its alternatives."""
    parts: list[str] = []
    if "enum" in spec:
        parts.append(", ".join(f"`{_json(value)}`" for value in spec["enum"]))
    if "const" in spec:
        parts.append(f"`{_json(spec['const'])}`")
    limits = {
        "minimum": "at least {}",
        "exclusiveMinimum": "more than {}",
        "maximum": "at most {}",
        "exclusiveMaximum": "less than {}",
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "minItems": "at least {} item(s)",
        "maxItems": "at most {} item(s)",
        "minProperties": "at least {} entry (entries)",
        "pattern": "matches `{}`",
    }
    for key, text in limits.items():
        if key in spec:
            parts.append(text.format(spec[key]))
    for combinator in ("anyOf", "oneOf"):
        for option in spec.get(combinator, []):
            if "$ref" not in option:
                inner = _allowed(option)
                if inner:
                    parts.append(inner)
    return "; ".join(parts).replace("|", "\\|")


def _anchor(name: str) -> str:
    return name.lower()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False).replace("|", "\\|")


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference page before the navigation is built."""
    files.append(File.generated(config, REFERENCE_PAGE, content=render_reference(json_schema())))
    return files
