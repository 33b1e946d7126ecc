"""Draw a design's route: Mermaid and Graphviz DOT text, or a self-contained SVG.

``route_graph(design)`` turns the structured route into nodes (each place an activity is done,
plus the decision points) and edges labelled with the conditions that lead along them. Each
occurrence of an activity is its own node, so a route that does ``loops-lesson`` in two cases
draws it twice, as a learner would meet it. Remediation loops are the only edges that point
back; they are drawn dashed.

The SVG renderer lays the graph out itself (no Graphviz binary needed): layers by longest path
from the start, nodes in route order within a layer, straight edges, loops curving on the right.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from adaptive_lti.core.constructs import construct_of
from adaptive_lti.core.constructs.base import Exit
from adaptive_lti.core.design import Design, Step

FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    shape: str  # start, end, activity, decision, choice, split
    detail: str = ""  # for activities: "<activity id> · <kind>"


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str = ""
    loop: bool = False  # a remediation edge back to the check
    # Where this edge comes among its source's ways out, in the order the design writes them
    # (case 1, case 2, ...): drawings keep that order from left to right.
    rank: int = 0


@dataclass(frozen=True)
class RouteGraph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


@dataclass
class Drawing:
    design: Design
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    def node(self, label: str, shape: str, detail: str = "") -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append(GraphNode(node_id, label, shape, detail))
        return node_id

    def connect(self, exits: list[Exit], target: str) -> None:
        for source, label, rank in exits:
            self.edges.append(GraphEdge(source, target, label, rank=rank))

    def edge(
        self, source: str, target: str, label: str = "", *, rank: int = 0, loop: bool = False
    ) -> None:
        self.edges.append(GraphEdge(source, target, label, loop=loop, rank=rank))

    def activity(self, activity_id: str) -> str:
        activity = self.design.activities.get(activity_id)
        title = activity.title if activity is not None else activity_id
        kind = activity.kind if activity is not None else "unknown"
        return self.node(title, "activity", f"{activity_id} · {kind}")

    def steps(self, steps: tuple[Step, ...], exits: list[Exit]) -> list[Exit]:
        for step in steps:
            exits = self.step(step, exits)
        return exits

    def step(self, step: Step, exits: list[Exit]) -> list[Exit]:
        if isinstance(step, str):
            target = self.activity(step)
            self.connect(exits, target)
            return [(target, "", 0)]
        return construct_of(step).draw(self, step, exits)


def route_graph(design: Design) -> RouteGraph:
    """The route of ``design`` as nodes and labelled edges, from start to end."""
    builder = Drawing(design)
    start = builder.node("start", "start")
    exits = builder.steps(design.route, [(start, "", 0)])
    end = builder.node(f"completed ({design.completion.move_on.value})", "end")
    builder.connect(exits, end)
    return RouteGraph(tuple(builder.nodes), tuple(builder.edges))


# --- Mermaid -------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    return (
        " ".join(text.split())  # a label is one line; <br/> is added where we want a break
        .replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
    )


def to_mermaid(graph: RouteGraph, title: str = "") -> str:
    """A Mermaid flowchart (GitHub and GitLab render it in Markdown)."""
    lines = []
    if title:
        # The front matter is YAML: a JSON string is a valid YAML scalar, whatever the title holds.
        lines += ["---", f"title: {json.dumps(' '.join(title.split()), ensure_ascii=False)}", "---"]
    lines.append("flowchart TD")
    shapes = {
        "start": ('(["', '"])'),
        "end": ('(["', '"])'),
        "decision": ('{"', '"}'),
        "choice": ('[/"', '"/]'),
        "split": ('{{"', '"}}'),
        "activity": ('["', '"]'),
    }
    for node in graph.nodes:
        opening, closing = shapes[node.shape]
        label = _mermaid_text(node.label)
        if node.detail:
            label += f"<br/><small>{_mermaid_text(node.detail)}</small>"
        lines.append(f"    {node.id}{opening}{label}{closing}")
    for edge in graph.edges:
        arrow = "-.->" if edge.loop else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ---------------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graph: RouteGraph, title: str = "") -> str:
    """Graphviz DOT (render with ``dot -Tpng``, or paste into an online viewer)."""
    shapes = {
        "start": "shape=oval",
        "end": "shape=oval, style=bold",
        "decision": "shape=diamond",
        "choice": "shape=parallelogram",
        "split": "shape=hexagon",
        "activity": 'shape=box, style="rounded"',
    }
    lines = [
        "digraph design {",
        f'    label="{_dot_text(title)}";' if title else "",
        '    rankdir=TB; fontname="Helvetica";',
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in graph.nodes:
        label = node.label + (f"\n{node.detail}" if node.detail else "")
        lines.append(f'    {node.id} [{shapes[node.shape]}, label="{_dot_text(label)}"];')
    for edge in graph.edges:
        attributes = [f'label="{_dot_text(edge.label)}"'] if edge.label else []
        if edge.loop:
            attributes += ["style=dashed", "constraint=false"]
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"


# --- SVG ------------------------------------------------------------------------------------------

_CHAR_WIDTH = 7.0
_LINE_HEIGHT = 15.0
_LAYER_GAP = 80.0
_NODE_GAP = 40.0
_MARGIN = 30.0
_MAX_LABEL = 48
_LOOP_ROOM = 120.0  # space on each side for remediation loops
_FILL = {
    "start": "#e8f5e9",
    "end": "#e8f5e9",
    "activity": "#e3f2fd",
    "decision": "#fff8e1",
    "choice": "#f3e5f5",
    "split": "#fce4ec",
}


def _shorten(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Box:
    """A node, or a waypoint of a long edge (``node`` None), placed in a layer."""

    node: GraphNode | None
    lines: list[str]
    width: float
    height: float
    order: int  # creation order: breaks ties so the drawing follows the route
    rank: int = 0  # the rank of the edge that leads here (see GraphEdge.rank)
    x: float = 0.0  # centre
    y: float = 0.0  # top


def _layers(graph: RouteGraph) -> dict[str, int]:
    """Longest-path layering; a labelled edge spans two layers so its label gets its own row.

    Nodes are created in route order, so every forward edge goes from an earlier node to a
    later one, and one pass in creation order suffices.
    """
    layer = {node.id: 0 for node in graph.nodes}
    incoming: dict[str, list[tuple[str, int]]] = {node.id: [] for node in graph.nodes}
    for edge in graph.edges:
        if not edge.loop:
            incoming[edge.target].append((edge.source, 2 if edge.label else 1))
    for node in graph.nodes:
        if incoming[node.id]:
            layer[node.id] = max(layer[source] + span for source, span in incoming[node.id])
    return layer


def _node_box(node: GraphNode, order: int) -> _Box:
    lines = [_shorten(node.label)] + ([node.detail] if node.detail else [])
    width = max(len(line) for line in lines) * _CHAR_WIDTH + 28
    height = len(lines) * _LINE_HEIGHT + 14
    if node.shape == "decision":
        width, height = width + 30, height + 16
    return _Box(node, lines, width, height, order)


def _layout(
    graph: RouteGraph,
) -> tuple[dict[str, _Box], list[tuple[GraphEdge, list[_Box]]], float, float]:
    """Place every node and the waypoints of every forward edge; return the boxes, each edge
    with the boxes it passes through (source, waypoints, target), and the canvas size."""
    boxes = {node.id: _node_box(node, index) for index, node in enumerate(graph.nodes)}
    layer_of = _layers(graph)
    rows: dict[int, list[_Box]] = {}
    for node in graph.nodes:
        rows.setdefault(layer_of[node.id], []).append(boxes[node.id])
    parents: dict[int, list[_Box]] = {}  # id(box) -> boxes in the row above that lead to it
    routes: list[tuple[GraphEdge, list[_Box]]] = []
    for edge in graph.edges:
        source, target = boxes[edge.source], boxes[edge.target]
        if edge.loop:
            routes.append((edge, [source, target]))
            continue
        chain = [source]
        for layer in range(layer_of[edge.source] + 1, layer_of[edge.target]):
            first = layer == layer_of[edge.source] + 1
            label_width = len(_shorten(edge.label, 60)) * 6.2 + 12 if first and edge.label else 0
            waypoint = _Box(None, [], max(label_width, 16.0), 16.0, source.order, edge.rank)
            rows.setdefault(layer, []).append(waypoint)
            chain.append(waypoint)
        chain.append(target)
        if len(chain) == 2:
            target.rank = min(target.rank, edge.rank) if parents.get(id(target)) else edge.rank
        for upper, lower in itertools.pairwise(chain):
            parents.setdefault(id(lower), []).append(upper)
        routes.append((edge, chain))
    # One downward sweep: order each row by where its parents sit (barycentre).
    position: dict[int, float] = {}
    for layer in sorted(rows):
        row = rows[layer]
        if layer > 0:
            row.sort(
                key=lambda box: (
                    sum(position.get(id(p), 0.0) for p in parents.get(id(box), []))
                    / max(1, len(parents.get(id(box), [])))
                    if parents.get(id(box))
                    else float("inf"),
                    box.rank,
                    box.order,
                )
            )
        for index, box in enumerate(row):
            position[id(box)] = float(index)
    row_widths = {
        layer: sum(box.width for box in row) + _NODE_GAP * (len(row) - 1)
        for layer, row in rows.items()
    }
    width = max(row_widths.values(), default=0.0) + 2 * (_MARGIN + _LOOP_ROOM)
    top = _MARGIN + 30.0
    for layer in sorted(rows):
        row = rows[layer]
        left = (width - row_widths[layer]) / 2
        row_height = max(box.height for box in row)
        for box in row:
            box.x, box.y = left + box.width / 2, top + (row_height - box.height) / 2
            left += box.width + _NODE_GAP
        top += row_height + _LAYER_GAP
    height = top - _LAYER_GAP + _MARGIN
    return boxes, routes, width, height


def to_svg(graph: RouteGraph, title: str = "") -> str:
    """A standalone SVG drawing of the route (open it in a browser)."""
    boxes, routes, width, height = _layout(graph)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    if title:
        parts.append(
            f'<text x="{width / 2:.1f}" y="{_MARGIN:.1f}" text-anchor="middle" '
            f'font-size="16" font-weight="bold">{escape(title)}</text>'
        )
    labels: list[str] = []
    for edge, chain in routes:
        if edge.loop:
            source, target = chain
            # Loop on the side the lesson lies, so the curve does not cross the route.
            side = -1.0 if source.x < target.x else 1.0
            x1, y1 = source.x + side * source.width / 2, source.y + source.height / 2
            x2, y2 = target.x + side * target.width / 2, target.y + target.height / 2
            bulge = (min(x1, x2) - 60) if side < 0 else (max(x1, x2) + 60)
            parts.append(
                f'<path d="M {x1:.1f} {y1:.1f} C {bulge:.1f} {y1:.1f}, {bulge:.1f} {y2:.1f}, '
                f'{x2:.1f} {y2:.1f}" fill="none" stroke="#888" stroke-dasharray="5,4" '
                'marker-end="url(#arrow)"/>'
            )
            label_x, label_y = bulge - side * 12, (y1 + y2) / 2
        else:
            points = [(chain[0].x, chain[0].y + chain[0].height)]
            points += [(box.x, box.y + box.height / 2) for box in chain[1:-1]]
            points.append((chain[-1].x, chain[-1].y))
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="#555" marker-end="url(#arrow)"/>'
            )
            if len(chain) > 2:
                label_x, label_y = chain[1].x, chain[1].y + chain[1].height / 2
            else:
                label_x, label_y = (
                    (points[0][0] + points[1][0]) / 2,
                    (points[0][1] + points[1][1]) / 2,
                )
        if edge.label:
            shown = _shorten(edge.label, 60)
            label_width = len(shown) * 6.2 + 8
            labels.append(
                f"<g><title>{escape(edge.label)}</title>"
                f'<rect x="{label_x - label_width / 2:.1f}" y="{label_y - 9:.1f}" '
                f'width="{label_width:.1f}" height="16" rx="3" fill="white" '
                'fill-opacity="0.9"/>'
                f'<text x="{label_x:.1f}" y="{label_y + 3:.1f}" text-anchor="middle" '
                f'font-size="10.5" fill="#333">{escape(shown)}</text></g>'
            )
    for box in boxes.values():
        parts.append(_svg_node(box))
    parts += labels
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_node(box: _Box) -> str:
    node = box.node
    assert node is not None
    fill = _FILL[node.shape]
    left, top = box.x - box.width / 2, box.y
    if node.shape == "decision":
        middle = box.y + box.height / 2
        shape = (
            f'<polygon points="{box.x:.1f},{top:.1f} {left + box.width:.1f},{middle:.1f} '
            f'{box.x:.1f},{top + box.height:.1f} {left:.1f},{middle:.1f}" '
            f'fill="{fill}" stroke="#8d6e63"/>'
        )
    else:
        radius = box.height / 2 if node.shape in {"start", "end"} else 8
        shape = (
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" '
            f'height="{box.height:.1f}" rx="{radius:.1f}" fill="{fill}" stroke="#607d8b"/>'
        )
    first_baseline = box.y + (box.height - len(box.lines) * _LINE_HEIGHT) / 2 + 11
    texts = []
    for index, line in enumerate(box.lines):
        style = ' font-size="10" fill="#555"' if index > 0 else ""
        texts.append(
            f'<text x="{box.x:.1f}" y="{first_baseline + index * _LINE_HEIGHT:.1f}" '
            f'text-anchor="middle"{style}>{escape(line)}</text>'
        )
    tooltip = escape(node.label + (f" ({node.detail})" if node.detail else ""))
    return f'<g id="{node.id}"><title>{tooltip}</title>{shape}{"".join(texts)}</g>'


def render(design: Design, output_format: str) -> str:
    """The route of ``design`` as ``mermaid``, ``dot`` or ``svg`` text."""
    graph = route_graph(design)
    title = f"{design.title} (version {design.version})"
    if output_format == "mermaid":
        return to_mermaid(graph, title)
    if output_format == "dot":
        return to_dot(graph, title)
    if output_format == "svg":
        return to_svg(graph, title)
    raise ValueError(f"unknown graph format {output_format!r}; use one of {', '.join(FORMATS)}")
