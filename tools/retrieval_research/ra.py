"""Recipe A building blocks shared by the exp_ra_*.py scripts (score regularisation, paragraph weighting, ...)."""
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
from common import *

paras, wins, QPs = load_paragraphs()
NQ = len(Q)
# stems per query paragraph (same analyzer as QS; paragraphs = blank-line split, like the dense side)
PST = [[lib.query_stems(p) for p in ps] for ps in paras]


def logw_counts(cnt):
    """Recipe A term weight from a (possibly fractional) count: 1+ln c for c>=1, linear (=c) below 1."""
    return {k: (1 + np.log(v)) if v >= 1 else v for k, v in cnt.items() if v > 0}


def bm_doc(qi, pw=None):
    """Doc BM25 (max chunk). pw: per-paragraph weights (max-normalised); None = Recipe A (whole-query counts)."""
    if pw is None:
        cnt = Counter(QS[qi])
    else:
        pw = np.asarray(pw, float); pw = pw / (pw.max() + 1e-12); cnt = Counter()
        for a, st in zip(pw, PST[qi]):
            for s in st: cnt[s] += a
    return lib.chunk_to_doc(bm.score(bm.qvec(logw_counts(cnt))), cd, ND)


def dense_doc(qi, pw=None, k=5, beta=1.0, return_q=False):
    U = QPs[qi]
    w = np.ones(len(U)) if pw is None else np.asarray(pw, float)
    q = nv((U * w[:, None]).sum(0)); s = E @ q
    if k:
        top = np.argsort(-s)[:k]; q = nv(q + beta * E[top].mean(0)); s = E @ q
    d = lib.chunk_to_doc(s, cd, ND)
    return (d, q) if return_q else d


def fuse(b, d, w=0.5): return (1 - w) * z(b) + w * z(d)


_C = '/tmp/rr/cache/ra_base.pkl'
if os.path.exists(_C):
    BM, DN = pickle.load(open(_C, 'rb'))
else:
    BM = [bm_doc(i) for i in range(NQ)]; DN = [dense_doc(i) for i in range(NQ)]
    pickle.dump((BM, DN), open(_C, 'wb'))
FINAL = [fuse(b, d) for b, d in zip(BM, DN)]
A = ev(FINAL)            # (nq,3) Recipe A per-query metrics
BM_ONLY = ev(BM)


def boot_ci(X, Y, n=5000, seed=0):
    """mean paired nDCG@10 diff X-Y and 95% bootstrap CI over queries; plus P(diff>0)."""
    d = X[:, 0] - Y[:, 0]; rng = np.random.default_rng(seed)
    bs = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(n)])
    return d.mean(), np.percentile(bs, 2.5), np.percentile(bs, 97.5), (bs > 0).mean()


def report(per, title, top=8, base_key=None):
    """per: dict cfg -> (nq,3). Prints best fixed configs, CV estimate (repeated 5-fold, 20 reps), CI of best vs A."""
    print(f'== {title}  ({len(per)} configs)   Recipe A = {A.mean(0).round(4)}')
    rows = sorted(per.items(), key=lambda x: -x[1][:, 0].mean())
    for k, v in rows[:top]:
        m, lo, hi, p = boot_ci(v, A)
        print('  ', k, 'nDCG/R@10/MRR', v.mean(0).round(4), 'dA %+.4f CI[%+.4f,%+.4f] P>0 %.2f' % (m, lo, hi, p))
    cvm, picks = cv_select(per, n_rep=20)
    print('  CV (incl. baseline cfg if present):', cvm.round(4), 'gain vs A %+.4f' % (cvm[0] - A[:, 0].mean()), 'picks', picks)
    return cvm
