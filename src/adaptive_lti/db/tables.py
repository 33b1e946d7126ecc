"""Every table of the tool. Changes go through an Alembic revision in ``migrations/versions``.

Sections, one per capability: LTI core (platforms, keys, launches), learner journey (designs,
events, snapshots), grade delivery (line items, outbox).
"""

from __future__ import annotations

from adaptive_lti.db.base import Base

__all__ = ["Base"]
