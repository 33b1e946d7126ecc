"""The constructs of the route language, one module each, behind ``base.Construct``.

    branch      the first case whose condition holds routes the learner
    remediate   a check; below the mark, a lesson and the check again, then support
    choose      the learner picks activities from a set
    split       a stable weighted assignment to variants (A/B tests, cohorts)
    review      a spaced review of an earlier activity once time has passed

The engine (``core/engine.py``), the linter (``core/lint.py``), the loader (``core/loader.py``)
and the compiler (``core/compiled.py``) handle a plain activity id themselves and ask
``construct_of(step)`` for everything else. Adding a construct: its model in ``core/design.py``
(and in ``Step``), a module here, and one line in ``CONSTRUCTS``.
"""

from __future__ import annotations

from typing import Any

from adaptive_lti.core.constructs.base import Construct
from adaptive_lti.core.constructs.branch import BranchConstruct
from adaptive_lti.core.constructs.choose import ChooseConstruct
from adaptive_lti.core.constructs.remediate import RemediateConstruct
from adaptive_lti.core.constructs.review import ReviewConstruct
from adaptive_lti.core.constructs.split import SplitConstruct

# In the order the language reference lists them (messages that name them all follow it).
CONSTRUCTS: tuple[Construct[Any], ...] = (
    BranchConstruct(),
    RemediateConstruct(),
    ChooseConstruct(),
    SplitConstruct(),
    ReviewConstruct(),
)
BY_KEY: dict[str, Construct[Any]] = {construct.key: construct for construct in CONSTRUCTS}
_BY_MODEL: dict[type, Construct[Any]] = {construct.model: construct for construct in CONSTRUCTS}


def construct_of(step: object) -> Construct[Any]:
    """The construct of a composite step (not of a plain activity id)."""
    return _BY_MODEL[type(step)]


__all__ = ["BY_KEY", "CONSTRUCTS", "Construct", "construct_of"]
