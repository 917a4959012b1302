#!/usr/bin/python3
"""Golden values for AdAuctionSim.Evaluation's AUC, log loss and ECE (tests/AdAuctionSim.Evaluation.Tests/GoldenTests.cs).

Writes golden.csv (10,000 rows: label, score) and golden_expected.json. AUC and log loss come from scikit-learn
(Debian's python3-sklearn: apt-get install -y python3-sklearn; run with /usr/bin/python3). scikit-learn has no ECE, so
it is computed here with numpy by the definition the C# code documents:

  ECE over B = 20 equal-mass bins of the scores: rows sorted by score, bin b holds sorted positions
  [floor(b*n/B), floor((b+1)*n/B)); a group of tied scores that straddles a bin edge is shared between the bins by
  its number of positions in each, and its label sum pro rata; ECE = sum_b |sum of scores_b - sum of labels_b| / n.

Scores are rounded to 3 decimals so that there are many ties (and tie groups across bin edges).
"""
import json
import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

BINS = 20
rng = np.random.default_rng(20260101)
n = 10_000
logit = rng.normal(-1.0, 1.2, n)
truth = 1 / (1 + np.exp(-logit))
labels = (rng.random(n) < truth).astype(int)
# A noisy score, rounded so that ties are common; kept inside (0, 1) so no clipping happens in the log loss.
score = np.clip(np.round(1 / (1 + np.exp(-(logit + rng.normal(0, 0.7, n)))), 3), 0.001, 0.999)


def ece_equal_mass(scores, targets, bins):
    order = np.argsort(scores, kind="stable")
    s, t = scores[order], targets[order]
    values, starts, counts = np.unique(s, return_index=True, return_counts=True)
    sums = np.add.reduceat(t, starts)
    m = len(s)
    edges = [(b * m) // bins for b in range(bins + 1)]
    sum_score = np.zeros(bins)
    sum_target = np.zeros(bins)
    for value, start, count, total in zip(values, starts, counts, sums):
        for b in range(bins):
            take = min(start + count, edges[b + 1]) - max(start, edges[b])
            if take > 0:
                sum_score[b] += take * value
                sum_target[b] += total * take / count
    return float(np.abs(sum_score - sum_target).sum() / m)


with open("golden.csv", "w", encoding="utf-8", newline="\n") as f:
    f.write("label,score\n")
    for y, p in zip(labels, score):
        f.write(f"{y},{p!r}\n")

expected = {
    "rows": n,
    "auc": float(roc_auc_score(labels, score)),
    "log_loss": float(log_loss(labels, score)),
    "ece": ece_equal_mass(score, labels.astype(float), BINS),
    "bins": BINS,
    "distinct_scores": int(len(np.unique(score))),
    "sklearn": __import__("sklearn").__version__,
    "numpy": np.__version__,
}
with open("golden_expected.json", "w", encoding="utf-8", newline="\n") as f:
    json.dump(expected, f, indent=2)
    f.write("\n")
print(expected)
