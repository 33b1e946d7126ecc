"""Mastery per skill: Bayesian knowledge tracing, one constant-time update per answer.

BKT (Corbett & Anderson, 1995; the model OATutor uses) keeps, per learner and skill, the
probability ``p`` that the skill is known. Each answer is evidence: Bayes' rule with the skill's
``guess`` and ``slip`` rates gives the posterior, then the learner may learn at this opportunity
(``learn``). pyBKT refits over the whole history (O(n) per answer); this is O(1), which is what a
decision under a millisecond needs.
"""

from __future__ import annotations

from adaptive_lti.core.design import Skill


def update(known: float, correct: bool, skill: Skill) -> float:
    """P(known) after one answer, given P(known) before it."""
    if correct:
        evidence_if_known = known * (1.0 - skill.slip)
        evidence = evidence_if_known + (1.0 - known) * skill.guess
    else:
        evidence_if_known = known * skill.slip
        evidence = evidence_if_known + (1.0 - known) * (1.0 - skill.guess)
    # With guess/slip at 0 or 1 an answer can be impossible under the model; keep the estimate.
    posterior = evidence_if_known / evidence if evidence > 0.0 else known
    return posterior + (1.0 - posterior) * skill.learn


def is_mastered(known: float, skill: Skill) -> bool:
    return known >= skill.mastery
