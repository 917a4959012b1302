#!/usr/bin/env python3
"""The PyTorch peer of `adsim bench train`: the same architectures written as PyTorch users write them, timed the same way.

DESIGN.md section 9 names "PyTorch on the same architecture" as the peer of the training benchmark. This script trains
shared-bottom, omoe, mmoe, cgc, ple, stem and apem at AdAuctionSim's default sizes (models.md 16.3, the suite's defaults:
embedding 8 per field and per copy, bottom MLP [128, 64], 4 experts of one 64-unit layer, PLE/CGC and STEM 1 specific
and 2 shared experts per stage, bias-free linear gates, towers [32]) on the train impressions that
`adsim simulate scenarios/baseline.json --format csv` writes, in the idiomatic form of the public reference code
(MTReclib, DeepCTR-Torch, the official STEM): one nn.Sequential per expert and tower, a softmax gate per task, a bmm
for each mixture; APEM (no public code) as models.md 13.1 writes it. `mmoe-batched` is MMoE with its experts and
gates each batched into one Linear, as a user tuning it would write it. It is not part of the product and not run by the tests; docs/benchmarks.md gives its figures.

What a step covers, as in `adsim bench train`: taking the batch by index from tensors holding the whole train split,
the forward pass, the conditional-mode loss (stage k: mean BCE over the rows whose parent stage was observed), the
backward pass and the optimiser update (torch.optim.SparseAdam on the embedding table's sparse gradient, Adam on the
rest, both lr 1e-3; AdAuctionSim's trainer adds an L2 decay of 1e-6 to the looked-up rows, which SparseAdam cannot,
a few hundred thousand multiply-adds a step). The floor is the same as adsim's: forward FLOPs per sample counted on
the Linear layers only (2 x inputs x outputs; gate mixing and element-wise work not counted), training = 3 x forward,
against the mean of the float32 1024 x 1024 matrix-multiply rates measured just before and just after each timed
window (median of 5 rounds of 8 products). Medians over rounds (each model once per round, the order rotated).

Needs Debian's python3-torch (PyTorch 1.13.1) and an optimised BLAS, which that package does not bring:
    apt-get install python3-torch libopenblas0-openmp
    adsim simulate scenarios/baseline.json --format csv --out /tmp/baseline-csv
    /usr/bin/python3 benchmarks/pytorch-peer/peer.py /tmp/baseline-csv --model all
Last lines, one per model: `train pytorch-ID: X samples/s, Y% of FLOP floor`. `--embedding dense` trains the table
with a dense gradient and one Adam over every parameter, as the reference code does.
"""

import argparse
import csv
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FIELDS = ["hour", "site_id", "position", "user_id", "age", "gender", "region", "device", "segment", "ad_id",
          "campaign_id", "advertiser_id", "category", "creative"]
EMB = 8
HIDDEN = [128, 64]
EXPERTS = 4
EXPERT_HIDDEN = 64
TOWER = [32]
SPARSE = True  # --embedding sparse (default) or dense


def load(folder, stages):
    """Train impressions: per-field offset row numbers [N, F] (int64) and stage labels [N, K] (float32)."""
    path = f"{folder}/impressions.csv"
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        missing = [c for c in ["split"] + FIELDS + stages if c not in header]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)} (expected the impressions of adsim simulate --format csv)")
        split = header.index("split")
        fields = [header.index(n) for n in FIELDS]
        labels = [header.index(s) for s in stages]
        x, y = [], []
        for row in reader:
            if row[split] != "train":
                continue
            try:
                x.append([int(row[i]) for i in fields])
                y.append([float(row[i]) for i in labels])
            except (ValueError, IndexError) as e:
                raise ValueError(f"{path}, line {reader.line_num}: {e}") from e
    x = np.asarray(x, dtype=np.int64)
    sizes = x.max(axis=0) + 2  # every id seen, plus one reserved bucket per field, as adsim's schema
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return torch.from_numpy(x + offsets), torch.tensor(y, dtype=torch.float32), int(sizes.sum())


def mlp(widths, last_relu=True):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if last_relu or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def tower(width):
    return mlp([width] + TOWER + [1], last_relu=False)


def mix(weights, experts):
    """weights [B, n] softmax, experts list of n [B, H] -> [B, H]."""
    return torch.bmm(weights.unsqueeze(1), torch.stack(experts, dim=1)).squeeze(1)


class SharedBottom(nn.Module):
    def __init__(self, rows, fields, depth):
        super().__init__()
        self.emb = nn.Embedding(rows, EMB, sparse=SPARSE)
        self.bottom = mlp([fields * EMB] + HIDDEN)
        self.towers = nn.ModuleList([tower(HIDDEN[-1]) for _ in range(depth)])

    def forward(self, x):
        h = self.bottom(self.emb(x).flatten(1))
        return torch.cat([t(h) for t in self.towers], dim=1)


class Moe(nn.Module):
    """MMoE (a gate per stage) or OMoE (one gate shared by the stages)."""

    def __init__(self, rows, fields, depth, one_gate):
        super().__init__()
        self.depth = depth
        self.emb = nn.Embedding(rows, EMB, sparse=SPARSE)
        self.experts = nn.ModuleList([mlp([fields * EMB, EXPERT_HIDDEN]) for _ in range(EXPERTS)])
        self.gates = nn.ModuleList([nn.Linear(fields * EMB, EXPERTS, bias=False) for _ in range(1 if one_gate else depth)])
        self.towers = nn.ModuleList([tower(EXPERT_HIDDEN) for _ in range(depth)])

    def forward(self, x):
        e = self.emb(x).flatten(1)
        experts = [f(e) for f in self.experts]
        mixed = [mix(F.softmax(gate(e), dim=1), experts) for gate in self.gates]   # OMoE: one mixture for every stage
        return torch.cat([self.towers[k](mixed[min(k, len(mixed) - 1)]) for k in range(self.depth)], dim=1)


class BatchedMmoe(nn.Module):
    """MMoE as a PyTorch user tuning it would write it: the experts, which read the same input, as one Linear to n*H
    and the gates as one Linear to K*n, one softmax and one bmm for every stage's mixture. The same function and FLOPs."""

    def __init__(self, rows, fields, depth):
        super().__init__()
        self.depth = depth
        self.emb = nn.Embedding(rows, EMB, sparse=SPARSE)
        self.experts = nn.Linear(fields * EMB, EXPERTS * EXPERT_HIDDEN)
        self.gates = nn.Linear(fields * EMB, depth * EXPERTS, bias=False)
        self.towers = nn.ModuleList([tower(EXPERT_HIDDEN) for _ in range(depth)])

    def forward(self, x):
        e = self.emb(x).flatten(1)
        experts = F.relu(self.experts(e)).view(-1, EXPERTS, EXPERT_HIDDEN)
        g = F.softmax(self.gates(e).view(-1, self.depth, EXPERTS), dim=2)
        h = torch.bmm(g, experts)
        return torch.cat([self.towers[k](h[:, k]) for k in range(self.depth)], dim=1)


class Ple(nn.Module):
    """PLE (DeepCTR-Torch's form): per level task k's experts read u_k, shared ones u_s; gate k mixes its own and the
    shared experts, the shared gate (not on the last level) all of them. CGC is one level."""

    def __init__(self, rows, fields, depth, levels, specific=1, shared=2):
        super().__init__()
        self.depth, self.levels, self.specific, self.shared = depth, levels, specific, shared
        self.emb = nn.Embedding(rows, EMB, sparse=SPARSE)
        self.task_experts = nn.ModuleList()
        self.shared_experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        width = fields * EMB
        for level in range(levels):
            self.task_experts.append(nn.ModuleList([nn.ModuleList([mlp([width, EXPERT_HIDDEN]) for _ in range(specific)])
                                                    for _ in range(depth)]))
            self.shared_experts.append(nn.ModuleList([mlp([width, EXPERT_HIDDEN]) for _ in range(shared)]))
            self.task_gates.append(nn.ModuleList([nn.Linear(width, specific + shared, bias=False) for _ in range(depth)]))
            if level < levels - 1:
                self.shared_gates.append(nn.Linear(width, depth * specific + shared, bias=False))
            width = EXPERT_HIDDEN
        self.towers = nn.ModuleList([tower(EXPERT_HIDDEN) for _ in range(depth)])

    def forward(self, x):
        e = self.emb(x).flatten(1)
        inputs, shared_input = [e] * self.depth, e
        for level in range(self.levels):
            task = [[f(inputs[k]) for f in self.task_experts[level][k]] for k in range(self.depth)]
            shared = [f(shared_input) for f in self.shared_experts[level]]
            outputs = [mix(F.softmax(self.task_gates[level][k](inputs[k]), dim=1), task[k] + shared) for k in range(self.depth)]
            if level < self.levels - 1:
                every = [o for t in task for o in t] + shared
                shared_input = mix(F.softmax(self.shared_gates[level](shared_input), dim=1), every)
            inputs = outputs
        return torch.cat([self.towers[k](inputs[k]) for k in range(self.depth)], dim=1)


class Stem(nn.Module):
    """STEM (official STEM.py): K task embedding copies and a shared one; task t's experts read x_t, the shared experts
    x_s; gate t reads x_t + x_s and mixes every expert, the other tasks' specific experts detached. One layer."""

    def __init__(self, rows, fields, depth, specific=1, shared=2):
        super().__init__()
        self.depth = depth
        self.emb = nn.Embedding(rows, EMB * (depth + 1), sparse=SPARSE)
        width = fields * EMB
        self.task_experts = nn.ModuleList([nn.ModuleList([mlp([width, EXPERT_HIDDEN]) for _ in range(specific)])
                                           for _ in range(depth)])
        self.shared_experts = nn.ModuleList([mlp([width, EXPERT_HIDDEN]) for _ in range(shared)])
        self.gates = nn.ModuleList([nn.Linear(width, depth * specific + shared, bias=False) for _ in range(depth)])
        self.towers = nn.ModuleList([tower(EXPERT_HIDDEN) for _ in range(depth)])

    def forward(self, x):
        copies = [c.flatten(1) for c in self.emb(x).split(EMB, dim=2)]
        task = [[f(copies[t]) for f in self.task_experts[t]] for t in range(self.depth)]
        shared = [f(copies[-1]) for f in self.shared_experts]
        out = []
        for t in range(self.depth):
            experts = [o if j == t else o.detach() for j in range(self.depth) for o in task[j]] + shared
            g = F.softmax(self.gates[t](copies[t] + copies[-1]), dim=1)
            out.append(self.towers[t](mix(g, experts)))
        return torch.cat(out, dim=1)


class HeadAttention(nn.Module):
    """APEM's multi-head attention as models.md 13.1 writes it: keys and values bias-free d -> M*d projections of the
    set, per-head queries of width d, a softmax over the set's rows, W^O (M*d -> d)."""

    def __init__(self, d, heads):
        super().__init__()
        self.d, self.heads = d, heads
        self.keys = nn.Linear(d, heads * d, bias=False)
        self.values = nn.Linear(d, heads * d, bias=False)
        self.output = nn.Linear(heads * d, d)

    def forward(self, queries, x):
        """queries [B or 1, M, q, d], x [B, n, d] -> [B, q, d]."""
        b, n, _ = x.shape
        k = self.keys(x).view(b, n, self.heads, self.d).transpose(1, 2)
        v = self.values(x).view(b, n, self.heads, self.d).transpose(1, 2)
        a = F.softmax(queries @ k.transpose(-2, -1) / self.d ** 0.5, dim=-1)  # [B, M, q, n]
        o = (a @ v).permute(0, 2, 1, 3).reshape(b, -1, self.heads * self.d)
        return self.output(o)


class Apem(nn.Module):
    """APEM at the suite's sizes (d_f 8, K_I 16, 2 heads, 2 layers, selector MLP [64], FFN 8 -> 16 -> 8, heads [32]), in
    the form models.md 13.1 writes it: per layer the selector MLP and smooth step, the gated inducing points as queries
    per sample, the attention, Y = LayerNorm(mean-head gated queries + O), Y = LayerNorm(Y + FFN(Y)); per stage a
    learned query attending over Y, T = LayerNorm(T + F); cumulative heads. gamma stays at gamma_0 = 10 (adsim lowers
    it step by step; the smooth step's arithmetic is the same at any gamma)."""

    def __init__(self, rows, fields, depth, points=16, heads=2, layers=2, gamma=10.0):
        super().__init__()
        self.depth, self.points, self.heads, self.gamma = depth, points, heads, gamma
        self.emb = nn.Embedding(rows, EMB, sparse=SPARSE)
        self.selectors = nn.ModuleList()
        self.inducing = nn.ParameterList()
        self.attention = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.ffn = nn.ModuleList()
        self.ffn_norms = nn.ModuleList()
        self.queries = nn.ParameterList()
        self.pattern = nn.ModuleList()
        self.pattern_norms = nn.ModuleList()
        for layer in range(layers):
            width = (fields if layer == 0 else points) * EMB
            self.selectors.append(mlp([width, 64, points], last_relu=False))
            self.inducing.append(nn.Parameter(torch.randn(heads, points, EMB) * 0.3))
            self.attention.append(HeadAttention(EMB, heads))
            self.norms.append(nn.LayerNorm(EMB))
            self.ffn.append(mlp([EMB, 2 * EMB, EMB], last_relu=False))
            self.ffn_norms.append(nn.LayerNorm(EMB))
            self.queries.append(nn.Parameter(torch.randn(depth, EMB) * 0.3))
            self.pattern.append(nn.ModuleList([HeadAttention(EMB, heads) for _ in range(depth)]))
            self.pattern_norms.append(nn.ModuleList([nn.LayerNorm(EMB) for _ in range(depth)]))
        self.heads_out = nn.ModuleList([tower(EMB) for _ in range(depth)])

    def smooth_step(self, z):
        g = self.gamma
        cubic = -2 / g ** 3 * z ** 3 + 3 / (2 * g) * z + 0.5
        return torch.where(z <= -g / 2, torch.zeros_like(z), torch.where(z >= g / 2, torch.ones_like(z), cubic))

    def forward(self, x):
        h = self.emb(x)
        t = [None] * self.depth
        for layer in range(len(self.selectors)):
            gates = self.smooth_step(self.selectors[layer](h.flatten(1)))                   # [B, K_I]
            queries = self.inducing[layer].unsqueeze(0) * gates[:, None, :, None]           # [B, M, K_I, d]
            y = self.norms[layer](gates.unsqueeze(-1) * self.inducing[layer].mean(0) + self.attention[layer](queries, h))
            y = self.ffn_norms[layer](y + self.ffn[layer](y))
            for i in range(self.depth):
                q = self.queries[layer][i].view(1, 1, 1, EMB).expand(1, self.heads, 1, EMB)
                f = self.pattern[layer][i](q, y).squeeze(1)
                t[i] = self.pattern_norms[layer][i](f if t[i] is None else t[i] + f)
            h = y
        return torch.cat([self.heads_out[i](t[i]) for i in range(self.depth)], dim=1)

    def flops(self, fields):
        """adsim's count of APEM's forward FLOPs per sample (TrainingBenchmark: the selector, head and feed-forward
        Linear layers, and the attention in its folded form: scores, pooling and the folded value-output products)."""
        d, m, k, n = EMB, self.heads, self.points, self.depth
        total = 0
        for layer in range(len(self.selectors)):
            rows = fields if layer == 0 else k
            total += 2 * (rows * d * 64 + 64 * k)                                 # selector
            total += 2 * (rows * d * k * m + k * m * d * d) + 2 * rows * k * m * d  # inducing attention, folded
            total += 2 * 2 * k * d * 2 * d                                          # feed-forward
            total += 2 * n * m * d * (k + d) + 2 * k * n * m * d                    # pattern selection, folded
        return total + n * 2 * (d * TOWER[0] + TOWER[0])


MODELS = {
    "shared-bottom": lambda r, f, k: SharedBottom(r, f, k),
    "omoe": lambda r, f, k: Moe(r, f, k, one_gate=True),
    "mmoe": lambda r, f, k: Moe(r, f, k, one_gate=False),
    "mmoe-batched": lambda r, f, k: BatchedMmoe(r, f, k),
    "cgc": lambda r, f, k: Ple(r, f, k, levels=1),
    "ple": lambda r, f, k: Ple(r, f, k, levels=2),
    "stem": lambda r, f, k: Stem(r, f, k),
    "apem": lambda r, f, k: Apem(r, f, k),
}


def forward_flops(model):
    """2 x in x out per sample for every Linear layer: adsim's count (gate mixing, bias and element-wise work left out);
    APEM's is its own (the attention products as adsim counts them)."""
    if isinstance(model, Apem):
        return model.flops(len(FIELDS))
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def apem_loss(logits, labels):
    """Eq. 21/23 on impressions: cumulative BCE per stage, plus (f_{i-1} - f_i - (s_{i-1} - s_i))^2 for i >= 2."""
    f = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0).sum()
    dependency = ((f[:, :-1] - f[:, 1:]) - (labels[:, :-1] - labels[:, 1:])).pow(2).mean(0).sum()
    return bce + dependency


def conditional_loss(logits, labels):
    """Stage k: mean BCE over the rows whose parent stage was observed (s_0 = 1); the stages summed."""
    per_row = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    parent = torch.cat([torch.ones_like(labels[:, :1]), labels[:, :-1]], dim=1)
    return ((per_row * parent).sum(0) / parent.sum(0).clamp_min(1)).sum()


def blas_library():
    """The BLAS the process has loaded (Debian's build links the libblas.so.3 alternative: reference BLAS, OpenBLAS, ...)."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line})
        return ", ".join(paths) or "none found"
    except OSError:
        return "unknown (no /proc/self/maps)"


def matmul_rate():
    """Float32 1024 x 1024 products: the median of 5 rounds of 8, in GFLOP/s."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(8):
            a @ b
        rates.append(8 * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


class Run:
    def __init__(self, name, model, x, y, batch, seed):
        self.name, self.model, self.x, self.y, self.batch = name, model, x, y, batch
        if SPARSE:
            dense = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
            self.optimisers = [torch.optim.SparseAdam([model.emb.weight], lr=1e-3), torch.optim.Adam(dense, lr=1e-3)]
        else:
            self.optimisers = [torch.optim.Adam(model.parameters(), lr=1e-3)]
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.at = torch.randperm(x.shape[0], generator=self.generator), 0
        self.phases = [0.0, 0.0, 0.0]

    def step(self):
        t0 = time.perf_counter()
        if self.at + self.batch > self.order.shape[0]:
            self.order, self.at = torch.randperm(self.x.shape[0], generator=self.generator), 0
        index = self.order[self.at:self.at + self.batch]
        self.at += self.batch
        x, y = self.x.index_select(0, index), self.y.index_select(0, index)
        if isinstance(self.model, Apem):
            cumulative = y.cumprod(dim=1)   # s_k: every stage up to k reached
            loss = apem_loss(self.model(x), cumulative)
        else:
            loss = conditional_loss(self.model(x), y)
        for o in self.optimisers:
            o.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        for o in self.optimisers:
            o.step()
        t3 = time.perf_counter()
        self.phases = [a + b for a, b in zip(self.phases, (t1 - t0, t2 - t1, t3 - t2))]
        return loss


def window(run, seconds, warmup_steps, warmup_seconds):
    start, steps = time.perf_counter(), 0
    while steps < warmup_steps or time.perf_counter() - start < warmup_seconds:
        run.step()
        steps += 1
    before = matmul_rate()
    run.phases = [0.0, 0.0, 0.0]
    start, steps = time.perf_counter(), 0
    while steps < 30 or time.perf_counter() - start < seconds:
        loss = run.step()
        steps += 1
    elapsed = time.perf_counter() - start
    after = matmul_rate()
    if not torch.isfinite(loss):
        sys.exit(f"{run.name}: the loss is not finite")
    return steps, elapsed, before, after


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("simulation", help="folder written by adsim simulate --format csv")
    parser.add_argument("--model", default="all", help="an id, a comma-separated list or all: " + ", ".join(MODELS))
    parser.add_argument("--stages", default="click,authorize,convert", help="the funnel's stage columns, in order")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--embedding", choices=["sparse", "dense"], default="sparse",
                        help="sparse: sparse gradients, SparseAdam on the table (default); dense: the reference code's "
                             "dense embedding gradient and one Adam over every parameter")
    a = parser.parse_args()
    global SPARSE
    SPARSE = a.embedding == "sparse"
    ids = list(MODELS) if a.model == "all" else a.model.split(",")
    unknown = [i for i in ids if i not in MODELS]
    if unknown:
        parser.error(f"--model: unknown id(s) {', '.join(unknown)}; expected all or any of {', '.join(MODELS)}")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    try:
        x, y, rows = load(a.simulation, a.stages.split(","))
    except (OSError, ValueError) as e:
        parser.error(f"simulation: {e}")
    if x.shape[0] < a.batch:
        parser.error(f"simulation: {x.shape[0]} train impressions, fewer than one batch of {a.batch}")
    depth = y.shape[1]
    print("pytorch peer of adsim bench train")
    print(f"  runtime      PyTorch {torch.__version__} on cpu, {torch.get_num_threads()} intra-op threads, "
          f"BLAS: {blas_library()}")
    print(f"  data         {a.simulation}: {x.shape[0]} train impressions, {x.shape[1]} fields, {rows} embedding rows, "
          f"{depth} stages")
    print(f"  timings      whole steps at batch {a.batch}: batch by index, forward, loss, backward, "
          f"{'SparseAdam on the embedding table + Adam' if SPARSE else 'Adam over every parameter (dense embedding gradient)'}; "
          f"per model and round a warm-up of at least 20 steps and 1 s, then at least {a.seconds} s and 30 steps")
    runs = {i: Run(i, MODELS[i](rows, x.shape[1], depth), x, y, a.batch, a.seed) for i in ids}
    shares = {i: [] for i in ids}
    rates = {i: [] for i in ids}
    for r in range(a.rounds):
        print(f"  round {r + 1} of {a.rounds}:")
        for i in ids[r % len(ids):] + ids[:r % len(ids)]:
            run = runs[i]
            steps, elapsed, before, after = window(run, a.seconds, 20, 1.0)
            samples = steps * a.batch / elapsed
            floor = (before + after) / 2 * 1e9 / (3 * forward_flops(run.model))
            shares[i].append(100 * samples / floor)
            rates[i].append(samples)
            forward, backward, update = (1000 * p / steps for p in run.phases)
            print(f"    {i}: {steps} steps in {elapsed:.2f} s, {1000 * elapsed / steps:.2f} ms a step ({forward:.2f} ms batch "
                  f"+ forward + loss, {backward:.2f} ms backward, {update:.2f} ms optimiser update); matmul rate "
                  f"{before:.1f} GFLOP/s before the window and {after:.1f} after; {shares[i][-1]:.1f}% of floor")
    print(f"\n  {'model':<14}{'fwd MFLOP/sample':>18}{'samples/s':>12}{'% of floor':>12}{'range %':>14}")
    for i in ids:
        print(f"  {i:<14}{forward_flops(runs[i].model) / 1e6:>18.3f}{statistics.median(rates[i]):>12.0f}"
              f"{statistics.median(shares[i]):>12.1f}{min(shares[i]):>8.1f}–{max(shares[i]):.1f}")
    print(f"  cpu, {a.threads} intra-op threads, batch {a.batch}; medians of {a.rounds} rounds")
    for i in ids:
        print(f"train pytorch-{i}: {statistics.median(rates[i]):.0f} samples/s, {statistics.median(shares[i]):.1f}% of FLOP floor")


if __name__ == "__main__":
    main()
