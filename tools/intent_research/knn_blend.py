"""How the intent engine's nearest-neighbour blend was chosen: BANKING77 5-fold CV (the same
stratified folds as `concierge eval intents`) over k, temperature and blend weight, on the
sentence vectors `concierge eval intents` cached in concierge-data/eval-cache.db (run it once
first). sklearn's C is 1 / (n · l2) for the engine's per-example L2 penalty.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy scikit-learn
    /tmp/v/bin/python tools/intent_research/knn_blend.py
"""
import sqlite3, hashlib, csv, numpy as np, json, sys
from sklearn.linear_model import LogisticRegression
db = sqlite3.connect('concierge-data/eval-cache.db')
def vecs(texts):
    out = []
    for t in texts:
        h = hashlib.sha256(t.encode()).hexdigest()
        b = db.execute("select vector from embeddings where model='local:all-MiniLM-L6-v2' and content_hash=?", (h,)).fetchone()[0]
        out.append(np.frombuffer(b, dtype='<f4'))
    return np.array(out)
rows = list(csv.reader(open('../shared/datasets/banking77/train.csv')))[1:]
rows = [r for r in rows if r[0].strip()]
texts = [r[0] for r in rows]; labels = [r[1].strip() for r in rows]
X = vecs(texts); names = sorted(set(labels)); y = np.array([names.index(l) for l in labels])
cnt = {}; fold = []
for l in labels:
    cnt[l] = cnt.get(l, 0) + 1; fold.append(cnt[l] % 5)
fold = np.array(fold)
res = {}
for f in range(5):
    tr, te = fold != f, fold == f
    lr = LogisticRegression(C=1/(1e-5*tr.sum()), max_iter=500)  # sklearn C = 1/(n*l2)
    lr.fit(X[tr], y[tr]); plr = lr.predict_proba(X[te])
    S = X[te] @ X[tr].T
    for k in [5, 10, 20]:
        for tau in [0.02, 0.05, 0.1]:
            idx = np.argpartition(-S, k, axis=1)[:, :k]
            pk = np.zeros_like(plr)
            for i in range(S.shape[0]):
                w = np.exp((S[i, idx[i]] - S[i, idx[i]].max()) / tau)
                np.add.at(pk[i], y[tr][idx[i]], w)
            pk /= pk.sum(1, keepdims=True)
            for a in [0.0, 0.3, 0.5, 0.7]:
                p = (1 - a) * plr + a * pk
                res.setdefault((k, tau, a), []).append((p.argmax(1) == y[te]).mean())
    print('fold', f, 'lr', (plr.argmax(1) == y[te]).mean(), flush=True)
best = sorted(((np.mean(v), k) for k, v in res.items()), reverse=True)[:8]
for b in best: print(b)
print('a=0', [ (k, np.mean(v)) for k, v in res.items() if k[2]==0.0][:1])
