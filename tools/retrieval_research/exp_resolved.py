"""Resolved questions (past questions vote for the documents that answered them), on top of the
product's own ranking: reads the TREC run file `DIR/hybrid+rerank.run` written by
`concierge eval retrieval --run DIR` (no `--resolved`) and the qrels, and measures the vote
(TF-IDF nearest K past questions, `score + w * sum(sim) / K`) with leave-one-out for a grid of
(K, w), then nested 5-fold cross-validation (K and w chosen on the training folds by
leave-one-out, the training folds' questions voting for the held-out fold), repeated 10 times.

    python exp_resolved.py QRELS DIR/hybrid+rerank.run [MODE]

Needs numpy and scikit-learn (the venv of README.md).
"""
import collections
import json
import math
import random
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

qrels, runf = sys.argv[1], sys.argv[2]
MODE = sys.argv[3] if len(sys.argv) > 3 else "hybrid+rerank"
Q = [json.loads(l) for l in open(qrels) if l.strip()]
key = lambda x: str(x.get("query_id", x.get("task_id", x.get("id"))))
rel = {key(x): set(x["relevant_doc_ids"]) for x in Q}
text = {key(x): x.get("query", x.get("query_scenario", x.get("question"))) for x in Q}
qids = list(rel)
run = collections.defaultdict(list)
for line in open(runf):
    q, _, d, _, s, m = line.split()
    if m == MODE:
        run[q].append((d, float(s)))
vec = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit([text[q] for q in qids])
M = vec.transform([text[q] for q in qids])
S = (M @ M.T).toarray()
idx = {q: i for i, q in enumerate(qids)}


def ndcg(ranked, R):
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in R)
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(10, len(R))))


def ranked(q, voters, K, w):
    sims = sorted(((S[idx[q], idx[t]], t) for t in voters if t != q), reverse=True)[:K]
    votes = collections.Counter()
    for s, t in sims:
        for d in rel[t]:
            votes[d] += s / K
    cand = run[q]
    sc = np.array([s + w * votes[d] for d, s in cand])
    return [cand[i][0] for i in np.argsort(-sc, kind="stable")]


def mean_ndcg(qs, voters, K, w):
    return float(np.mean([ndcg(ranked(q, voters, K, w), rel[q]) for q in qs]))


print("no votes", round(mean_ndcg(qids, [], 1, 0.0), 4))
grid = [(K, w) for K in [2, 3, 5] for w in [2, 3, 5, 8, 12]]
for K, w in grid:
    print(f"leave-one-out K={K} w={w}: {mean_ndcg(qids, qids, K, w):.4f}")
scores, chosen = [], collections.Counter()
for rep in range(10):
    rnd = random.Random(rep)
    qs = qids[:]
    rnd.shuffle(qs)
    folds = [qs[i::5] for i in range(5)]
    got = []
    for f in folds:
        train = [q for q in qids if q not in f]
        K, w = max(grid, key=lambda g: mean_ndcg(train, train, *g))
        chosen[(K, w)] += 1
        got += [ndcg(ranked(q, train, K, w), rel[q]) for q in f]
    scores.append(np.mean(got))
print(f"nested 5-fold CV x10: {np.mean(scores):.4f} (sd {np.std(scores):.4f}); chosen {chosen.most_common(4)}")
