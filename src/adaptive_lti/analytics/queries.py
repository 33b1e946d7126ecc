"""Path analytics for instructors, computed in the database (SQL-first).

"Who took which route": learners per branch case and per pick of each choice, with how those
learners are doing (finished, passed, flagged as needing help, average grade), so that an
instructor can see whether the routes work. Each count is one ``GROUP BY`` over the learners'
snapshots (one row per learner: ``learner_snapshot``), reading the route and choice the engine
stored in the snapshot's state; the design only tells which branches and choices to ask about.
The same SQL runs on SQLite and PostgreSQL (SQLAlchemy renders the JSON paths for each).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Float, Row, Text, case, cast, func, select
from sqlalchemy.orm import Session

from adaptive_lti.core.catalogue import Tenant
from adaptive_lti.core.compiled import CompiledDesign, iter_steps
from adaptive_lti.core.design import Attribute, AttributeType, Branch, Choose
from adaptive_lti.core.explanation import path_text
from adaptive_lti.core.loader import load_design
from adaptive_lti.db import designs_repo
from adaptive_lti.db.tables import LearnerEnrolment, LearnerSnapshot

NOT_YET = "not decided yet"
NOT_KNOWN = "not known"


@dataclass(frozen=True)
class RouteCount:
    """Learners on one branch case (or one pick of a choice) and how they are doing."""

    label: str  # the case's name, the activities picked, or NOT_YET
    learners: int
    finished: int
    passed: int
    needs_help: int
    average_grade: float | None  # over the learners who have a grade


@dataclass(frozen=True)
class BackgroundTable:
    """Learners per route and per value of one background attribute (e.g. prior programming):
    does each route get the learners it was meant for, and do they pass?"""

    attribute: str
    description: str
    values: tuple[str, ...]  # the attribute's declared values, then NOT_KNOWN when it occurs
    # (route label, attribute value) -> (learners, of whom passed)
    cells: Mapping[tuple[str, str], tuple[int, int]]

    def cell(self, label: str, value: str) -> tuple[int, int]:
        return self.cells.get((label, value), (0, 0))


@dataclass(frozen=True)
class RouteTable:
    """One branch step or one choice of the design, with a row per case or pick."""

    kind: str  # "branch" or "choice"
    title: str  # e.g. "Branch at route[2]" or "Choice 'elective'"
    where: str  # the step's path in the design
    options: tuple[str, ...]  # every case or option the design offers, taken or not
    rows: tuple[RouteCount, ...]
    # How each option and label reads for people: activity titles for the picks of a choice.
    titles: Mapping[str, str] = field(default_factory=dict)
    by_background: tuple[BackgroundTable, ...] = ()

    def title_of(self, label: str) -> str:
        return self.titles.get(label, label)


def _count(label: str, row: Row[Any]) -> RouteCount:
    _taken, learners, finished, passed, needs_help, average = tuple(row)
    return RouteCount(
        label=label,
        learners=int(learners or 0),
        finished=int(finished or 0),
        passed=int(passed or 0),
        needs_help=int(needs_help or 0),
        average_grade=None if average is None else round(float(average), 4),
    )


def route_tables(
    session: Session, tenant: Tenant, resource_link_pk: int, design: CompiledDesign
) -> list[RouteTable]:
    """Learners per branch case and per choice on one activity, for one design version of the
    tenant."""
    scope = (
        LearnerEnrolment.registration_id == tenant.registration_id,
        LearnerEnrolment.resource_link_id == resource_link_pk,
        LearnerEnrolment.design_id == design.id,
        LearnerEnrolment.design_version == design.version,
    )
    tables: list[RouteTable] = []
    for path, step in iter_steps(design.design.route, ("route",)):
        where = path_text(path)
        if isinstance(step, Branch):
            options = tuple(
                case_.name or f"case {index + 1}" for index, case_ in enumerate(step.branch)
            )
            taken = LearnerSnapshot.state[("routes", where, "case")].as_string()
            tables.append(
                RouteTable(
                    kind="branch",
                    title=f"Branch at {where}",
                    where=where,
                    options=options,
                    rows=_grouped(session, scope, taken, options, decode=False),
                    by_background=tuple(
                        _by_background(session, scope, taken, attribute_id, attribute)
                        for attribute_id, attribute in design.design.attributes.items()
                        if attribute.type is AttributeType.choice and attribute.values
                    ),
                )
            )
        elif isinstance(step, Choose):
            choice = step.choose
            options = tuple(choice.from_)
            picked = cast(LearnerSnapshot.state[("choices", choice.id)], Text)
            tables.append(
                RouteTable(
                    kind="choice",
                    title=f"Choice '{choice.id}'",
                    where=where,
                    options=options,
                    rows=_grouped(session, scope, picked, options, decode=True),
                    titles={
                        option: design.design.activities[option].title
                        for option in options
                        if option in design.design.activities
                    },
                )
            )
    return tables


def _by_background(
    session: Session,
    scope: tuple[ColumnElement[bool], ...],
    taken: ColumnElement[Any],
    attribute_id: str,
    attribute: Attribute,
) -> BackgroundTable:
    """One GROUP BY (route, attribute value) over the activity's snapshots."""
    value = LearnerSnapshot.state[("attributes", attribute_id)].as_string()
    query = (
        select(
            taken,
            value,
            func.count(),
            func.sum(case((LearnerSnapshot.passed.is_(True), 1), else_=0)),
        )
        .join(LearnerEnrolment, LearnerEnrolment.id == LearnerSnapshot.enrolment_id)
        .where(*scope)
        .group_by(taken, value)
    )
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    for route, raw, learners, passed in session.execute(query):
        key = (route or NOT_YET, raw if raw is not None else NOT_KNOWN)
        before = cells.get(key, (0, 0))
        cells[key] = (before[0] + int(learners or 0), before[1] + int(passed or 0))
    values = tuple(attribute.values or ())
    if any(known == NOT_KNOWN for _, known in cells):
        values = (*values, NOT_KNOWN)
    return BackgroundTable(
        attribute=attribute_id,
        description=attribute.description or attribute_id.replace("_", " "),
        values=values,
        cells=cells,
    )


def _grouped(
    session: Session,
    scope: tuple[ColumnElement[bool], ...],
    key: ColumnElement[Any],
    options: tuple[str, ...],
    *,
    decode: bool,
) -> tuple[RouteCount, ...]:
    """One GROUP BY over the activity's snapshots: learners and outcomes per value of ``key``."""
    query = (
        select(
            key.label("taken"),
            func.count(),
            func.sum(case((LearnerSnapshot.completed.is_(True), 1), else_=0)),
            func.sum(case((LearnerSnapshot.passed.is_(True), 1), else_=0)),
            func.sum(case((LearnerSnapshot.needs_help.is_(True), 1), else_=0)),
            func.avg(cast(LearnerSnapshot.grade, Float)),
        )
        .join(LearnerEnrolment, LearnerEnrolment.id == LearnerSnapshot.enrolment_id)
        .where(*scope)
        .group_by(key)
    )
    counts: dict[str, RouteCount] = {}
    for row in session.execute(query):
        raw = row[0]
        label = NOT_YET
        if raw is not None and raw != "null":
            if decode:
                try:
                    picked = json.loads(raw)
                except ValueError:
                    picked = [raw]
                label = ", ".join(str(item) for item in picked) if picked else "nothing"
            else:
                label = str(raw)
        current = counts.get(label)
        count = _count(label, row)
        if current is not None:  # two JSON spellings of one pick: add them up
            count = _merge(current, count)
        counts[label] = count
    ordered = [counts.pop(option) for option in options if option in counts]
    not_yet = counts.pop(NOT_YET, None)
    ordered.extend(counts[label] for label in sorted(counts))
    if not_yet is not None:
        ordered.append(not_yet)
    return tuple(ordered)


def _merge(first: RouteCount, second: RouteCount) -> RouteCount:
    graded = [
        (count.average_grade, count.learners)
        for count in (first, second)
        if count.average_grade is not None
    ]
    average = (
        round(sum(g * n for g, n in graded) / sum(n for _, n in graded), 4) if graded else None
    )
    return RouteCount(
        label=first.label,
        learners=first.learners + second.learners,
        finished=first.finished + second.finished,
        passed=first.passed + second.passed,
        needs_help=first.needs_help + second.needs_help,
        average_grade=average,
    )


@dataclass(frozen=True)
class DesignRoutes:
    """The route tables of one design version used on the activity."""

    design_id: str
    version: int
    title: str
    learners: int
    tables: tuple[RouteTable, ...]


@lru_cache(maxsize=32)
def _compiled(source_text: str, name: str) -> CompiledDesign:
    # Published versions never change, so a version's text always compiles to the same design.
    return load_design(source_text, name)


def route_report(session: Session, tenant: Tenant, resource_link_pk: int) -> list[DesignRoutes]:
    """Who took which route on one of the tenant's activities: for each design version its
    learners are on."""
    versions = session.execute(
        select(LearnerEnrolment.design_id, LearnerEnrolment.design_version, func.count())
        .where(
            LearnerEnrolment.registration_id == tenant.registration_id,
            LearnerEnrolment.resource_link_id == resource_link_pk,
        )
        .group_by(LearnerEnrolment.design_id, LearnerEnrolment.design_version)
        .order_by(LearnerEnrolment.design_id, LearnerEnrolment.design_version.desc())
    ).all()
    report = []
    for design_id, version, learners in versions:
        stored = designs_repo.find_version(session, tenant, design_id, version)
        if stored is None:  # a design removed from the catalogue: nothing to group by
            continue
        design = _compiled(stored.source_text, f"{design_id}@{version}")
        report.append(
            DesignRoutes(
                design_id=design_id,
                version=version,
                title=stored.title,
                learners=int(learners),
                tables=tuple(route_tables(session, tenant, resource_link_pk, design)),
            )
        )
    return report
