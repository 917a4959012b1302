#!/usr/bin/env python3
"""The scikit-learn peer of `adsim bench metrics` (DESIGN.md section 9): AUC, log loss and ECE over N rows.

Rows drawn as `adsim bench metrics` draws them (the same distribution, not the same numbers): logit = -1.5 + 1.2 x a
logistic draw, label ~ Bernoulli(sigmoid(logit)), score = float32(sigmoid(logit + U(-0.75, 0.75))), so many scores tie.
Times sklearn.metrics.roc_auc_score, sklearn.metrics.log_loss and the ECE over 20 equal-mass bins
(scikit-learn has no ECE: the bins of sklearn.calibration.calibration_curve with strategy="quantile", in numpy, one pass), each alone and all
three together, on one process (scikit-learn's metrics run on one thread); the median of three runs after one
untimed warm-up. Needs Debian's python3-sklearn:
    apt-get install python3-sklearn
    /usr/bin/python3 benchmarks/sklearn-peer/metrics_peer.py --rows 10000000
Last line: `metrics sklearn: X s for N rows`.
"""

import argparse
import statistics
import time

import numpy as np
import sklearn
from sklearn.metrics import log_loss, roc_auc_score


def generate(n, seed):
    rng = np.random.default_rng(seed)
    u1, u2 = rng.random(n), rng.random(n)
    logit = -1.5 + 1.2 * (np.log(u1 + 1e-12) - np.log(u2 + 1e-12))
    labels = rng.random(n) < 1 / (1 + np.exp(-logit))
    scores = (1 / (1 + np.exp(-(logit + (rng.random(n) - 0.5) * 1.5)))).astype(np.float32).astype(np.float64)
    return scores, labels


def ece(labels, scores, bins=20):
    """ECE over 20 equal-mass bins, binned once as sklearn.calibration.calibration_curve(strategy="quantile") bins
    (percentile edges, np.searchsorted on the inner ones), each bin's |mean label - mean score| weighted by its rows."""
    edges = np.percentile(scores, np.linspace(0, 100, bins + 1))
    ids = np.searchsorted(edges[1:-1], scores)
    total = np.bincount(ids, minlength=bins)
    gap = np.bincount(ids, weights=labels, minlength=bins) - np.bincount(ids, weights=scores, minlength=bins)
    return float(np.abs(gap[total > 0]).sum() / total.sum())


def timed(work, repeats=3):
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20260101)
    a = parser.parse_args()
    if a.rows < 100:
        parser.error(f"--rows: {a.rows}; expected at least 100")
    scores, labels = generate(a.rows, a.seed)
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}: {a.rows} rows, {labels.mean():.4f} positive, "
          f"{np.unique(scores).size} distinct scores; median of 3 runs after a warm-up")
    parts = {
        "roc_auc_score": lambda: roc_auc_score(labels, scores),
        "log_loss": lambda: log_loss(labels, scores),
        "ece (20 equal-mass bins)": lambda: ece(labels, scores),
    }
    print(f"  AUC {roc_auc_score(labels, scores):.6f}, log loss {log_loss(labels, scores):.6f}, "
          f"ECE {ece(labels, scores):.6f}")
    for name, work in parts.items():
        median, times = timed(work)
        print(f"  {name}: {median:.3f} s (runs {', '.join(f'{t:.3f}' for t in times)})")
    median, times = timed(lambda: [w() for w in parts.values()])
    print(f"  all three: runs {', '.join(f'{t:.3f}' for t in times)}")
    print(f"metrics sklearn: {median:.3f} s for {a.rows} rows")


if __name__ == "__main__":
    main()
