"""The construct registry matches the language: every composite step of ``design.Step`` has one
construct module, keyed by the step's one YAML key, and the loader's wording lists them all."""

from __future__ import annotations

import typing

from adaptive_lti.core import design
from adaptive_lti.core.constructs import BY_KEY, CONSTRUCTS, construct_of
from adaptive_lti.core.loader_wording import STEP_SHAPES


def composite_steps() -> list[type]:
    return [member for member in typing.get_args(design.Step) if isinstance(member, type)]


def test_every_composite_step_has_exactly_one_construct() -> None:
    models = [construct.model for construct in CONSTRUCTS]
    assert sorted(m.__name__ for m in models) == sorted(m.__name__ for m in composite_steps())
    assert len(set(models)) == len(models)


def test_a_construct_is_keyed_by_its_steps_one_field() -> None:
    for construct in CONSTRUCTS:
        fields = [info.alias or name for name, info in construct.model.model_fields.items()]
        assert fields == [construct.key], construct
        assert BY_KEY[construct.key] is construct


def test_the_loader_names_every_construct_in_the_registry_order() -> None:
    assert (
        STEP_SHAPES == "a step is an activity id or one of branch, remediate, choose, split, review"
    )


def test_construct_of_finds_a_step_by_its_model() -> None:
    step = design.Review.model_validate(
        {"review": {"activity": "recap", "of": "lesson", "after": "2d"}}
    )
    assert construct_of(step).key == "review"
    assert construct_of(step).references(step) == [("activity", "recap"), ("of", "lesson")]
    assert construct_of(step).activities(step) == ["recap"]
