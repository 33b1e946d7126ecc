"""Drawing the route: the graph model, Mermaid, DOT and SVG output."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest
import yaml
from bench.design_generator import generate_design

from adaptive_lti.core.graph import render, route_graph, to_dot, to_mermaid, to_svg
from adaptive_lti.core.loader import load_design
from tests.core.design_texts import VALID

SVG = "{http://www.w3.org/2000/svg}"


def edges_by_label(text: str = VALID) -> dict[str, tuple[str, str]]:
    graph = route_graph(load_design(text).design)
    labels = {node.id: node.detail.split(" · ")[0] or node.label for node in graph.nodes}
    return {edge.label: (labels[edge.source], labels[edge.target]) for edge in graph.edges}


def test_the_graph_follows_the_route_with_conditions_on_the_edges() -> None:
    graph = route_graph(load_design(VALID).design)
    shapes = [node.shape for node in graph.nodes]
    assert shapes[0] == "start" and shapes[-1] == "end"
    assert shapes.count("decision") == 1
    edges = edges_by_label()
    assert edges['foundations: prior_programming == "none" or diagnostic.score < 0.5'] == (
        "branch",
        "loops-lesson",
    )
    assert edges["standard: otherwise"] == ("branch", "project")
    assert edges["score < 0.7 (at most 2 rounds)"] == ("loops-check", "loops-again")
    assert edges["try again"] == ("loops-again", "loops-check")
    assert edges["score ≥ 0.7"] == ("loops-check", "project")
    loops = [edge for edge in graph.edges if edge.loop]
    assert [edge.label for edge in loops] == ["try again"]


def test_choices_splits_reviews_and_fall_through() -> None:
    text = VALID.replace(
        "  - project\n",
        "  - choose: {id: elective, pick: 1, from: [loops-lesson, loops-again]}\n"
        "  - split: {id: pilot, variants: {a: {weight: 3}, b: {weight: 1, then: [loops-again]}}}\n"
        "  - review: {activity: loops-check, of: loops-lesson, after: 7d}\n"
        "  - project\n",
    ).replace("      - name: standard\n        otherwise: true\n        then: []\n", "")
    edges = edges_by_label(text)
    assert "no case holds" in edges
    assert edges["if chosen"][0].startswith("choose 1 of 2")
    assert "b (25%)" in edges and "a (75%)" in edges
    assert edges["7d after loops-lesson"][1] == "loops-check"
    assert "review not due" in edges


def test_mermaid_escapes_quotes_and_comparisons() -> None:
    text = render(load_design(VALID).design, "mermaid")
    assert text.startswith(
        '---\ntitle: "Introduction to Programming (version 1)"\n---\nflowchart TD\n'
    )
    assert "#quot;none#quot;" in text and "#lt; 0.5" in text
    labels = re.findall(r'\|"(.*)"\|', text)
    assert len(labels) == 6
    assert not [label for label in labels if '"' in label]  # quotes inside labels are escaped
    assert "-.->|" in text  # the remediation loop is dashed


def test_dot_is_well_formed() -> None:
    text = to_dot(route_graph(load_design(VALID).design), 'A "quoted" title')
    assert text.startswith("digraph design {\n")
    assert text.rstrip().endswith("}")
    assert 'label="A \\"quoted\\" title";' in text
    assert '\\"none\\"' in text
    assert "style=dashed, constraint=false" in text
    assert text.count("{") == text.count("}")


def test_svg_is_valid_xml_with_every_node_and_edge() -> None:
    graph = route_graph(load_design(VALID).design)
    root = ElementTree.fromstring(to_svg(graph, "Intro <1>"))
    assert root.tag == f"{SVG}svg"
    groups = [group for group in root.iter(f"{SVG}g") if group.get("id")]
    assert len(groups) == len(graph.nodes)
    drawn = list(root.iter(f"{SVG}polyline")) + list(root.iter(f"{SVG}path"))
    assert len(drawn) == len(graph.edges) + 1  # + the arrow head in <defs>
    texts = "".join(node.text or "" for node in root.iter(f"{SVG}text"))
    assert "Intro <1>" in texts
    assert "foundations" in texts


def test_svg_nodes_do_not_overlap() -> None:
    root = ElementTree.fromstring(render(load_design(generate_design(100)).design, "svg"))
    boxes = []
    for group in root.iter(f"{SVG}g"):
        rect = group.find(f"{SVG}rect")
        if group.get("id") and rect is not None:
            x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
            boxes.append((x, y, x + float(rect.get("width", 0)), y + float(rect.get("height", 0))))
    assert len(boxes) > 100
    for index, (left, top, right, bottom) in enumerate(boxes):
        for other in boxes[index + 1 :]:
            assert right <= other[0] or other[2] <= left or bottom <= other[1] or other[3] <= top


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown graph format"):
        render(load_design(VALID).design, "png")


def test_mermaid_of_a_large_design_is_quick_and_complete() -> None:
    design = load_design(generate_design(1000)).design
    text = to_mermaid(route_graph(design))
    assert text.count("\n") > 1000


def test_mermaid_titles_and_labels_with_colons_quotes_and_newlines() -> None:
    text = VALID.replace("title: Introduction to Programming", 'title: "Loops: the \\"basics\\""')
    text = text.replace("title: Welcome", "title: 'Hello\n\n        there'")
    mermaid = render(load_design(text).design, "mermaid")
    front_matter = mermaid.split("---")[1]
    assert yaml.safe_load(front_matter) == {"title": 'Loops: the "basics" (version 1)'}
    assert 'n1["Hello there<br/>' in mermaid


def test_branch_edges_keep_the_case_order_in_the_drawing() -> None:
    # The first case has no steps, so its edge is only drawn when the next step is: the rank
    # still puts it first (left).
    text = VALID.replace(
        """        then:
          - loops-lesson
          - remediate: {check: loops-check, lesson: loops-again, below: 0.7, max: 2}
      - name: standard
        otherwise: true
        then: []""",
        """        then: []
      - name: standard
        otherwise: true
        then:
          - loops-lesson
          - remediate: {check: loops-check, lesson: loops-again, below: 0.7, max: 2}""",
    )
    graph = route_graph(load_design(text).design)
    decision = next(node.id for node in graph.nodes if node.shape == "decision")
    ways_out = sorted((e for e in graph.edges if e.source == decision), key=lambda e: e.rank)
    assert [edge.label.split(":")[0] for edge in ways_out] == ["foundations", "standard"]
    root = ElementTree.fromstring(to_svg(graph))
    label_x = {
        text.text: float(text.get("x", 0))
        for text in root.iter(f"{SVG}text")
        if text.text and text.text.startswith(("foundations", "standard"))
    }
    foundations = next(x for label, x in label_x.items() if label.startswith("foundations"))
    assert foundations < label_x["standard: otherwise"]
