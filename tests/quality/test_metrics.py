"""Evaluation arithmetic on hand-made scores (what `gluecell qa eval` reports)."""

import numpy as np
import pytest

from gluecell.quality.evaluate import auroc, metrics_from_scores
from gluecell.quality.policy import VerdictPolicy
from gluecell.quality.train import choose_policy

TYPES = ("gap", "above", "thin", "blob")


def test_auroc_matches_pairwise_definition():
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.8])
    y = np.array([False, False, True, True, False])
    pairs = [(a, b) for a in s[y] for b in s[~y]]
    expected = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert auroc(s, y) == pytest.approx(expected)
    assert np.isnan(auroc(s, np.zeros(5, dtype=bool)))


def test_operating_point_metrics():
    p = VerdictPolicy(fail=dict.fromkeys(TYPES, 0.5), uncertain=dict.fromkeys(TYPES, 0.3), cross_check=2.0)
    scores = np.zeros((5, 4))
    labels = np.zeros((5, 4), dtype=bool)
    scores[0, 0], labels[0, 0] = 0.9, True  # gap caught (fail)
    scores[1, 0], labels[1, 0] = 0.4, True  # gap caught (uncertain)
    scores[2, 1], labels[2, 1] = 0.1, True  # above missed
    scores[3, 2] = 0.6  # clean view failed: a false reject
    scores[4, 3] = 0.35  # clean view to the human
    m = metrics_from_scores(scores, labels, p)
    assert m["recall"]["gap"] == 1.0 and m["recall"]["above"] == 0.0 and np.isnan(m["recall"]["thin"])
    assert m["false_reject_rate"] == 0.5 and m["to_human_rate"] == 0.5
    assert m["precision"] == 0.5  # two fails, one of them right
    assert m["confusion"] == {"pass": {"pass": 0, "fail": 1, "uncertain": 1},
                              "fail": {"pass": 1, "fail": 1, "uncertain": 1}}


def test_choose_policy_keeps_the_recall_target_on_validation():
    rng = np.random.default_rng(0)
    labels = np.zeros((200, 4), dtype=bool)
    labels[:40, 0] = True
    scores = rng.random((200, 4)) * 0.3
    scores[:40, 0] = rng.uniform(0.2, 1.0, 40)
    pol = choose_policy(scores, labels, 0.999)
    assert (scores[:40, 0] >= pol.uncertain["gap"]).all()
    assert pol.uncertain["gap"] <= pol.fail["gap"] <= 0.5
