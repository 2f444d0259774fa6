"""(d) cheap leftovers on top of Recipe A:
1 'recip': smoothing over reciprocal kNN only (n in kNN(d) and d in kNN(n)), whole corpus graph
2 'qpp': per-query fusion weight from score-distribution confidence: c_x = mean of the top-10 z(x);
         w_dense = c_d^g / (c_b^g + c_d^g)   (g=0: Recipe A)
3 'len': doc prior  final + lam * z(log #chunks)."""
from ra import *
from exp_ra_graph import SIMS

nch = np.bincount(cd, minlength=ND)
if __name__ == '__main__':
    per = {('A',): A}
    for sn in ['centroid', 'tfidf_body']:
        S = SIMS[sn]
        for k in [5, 10, 20]:
            nb = np.argpartition(-S, k, axis=1)[:, :k]
            M = np.zeros((ND, ND), bool); M[np.repeat(np.arange(ND), k), nb.ravel()] = True
            R = M & M.T; deg = R.sum(1)
            for lam in [0.1, 0.2, 0.3, 0.5]:
                per[('recip', sn, k, lam)] = ev([f + lam * np.where(deg > 0, (R * f[None]).sum(1) / np.maximum(deg, 1), 0) for f in FINAL])
    conf = lambda x: max(np.sort(z(x))[-10:].mean(), 1e-3)
    for g in [0.5, 1, 2, 4]:
        per[('qpp', g)] = ev([fuse(b, d, conf(d) ** g / (conf(b) ** g + conf(d) ** g)) for b, d in zip(BM, DN)])
    print('mean qpp weight g=1', np.mean([conf(d) / (conf(b) + conf(d)) for b, d in zip(BM, DN)]).round(3))
    for lam in [-0.2, -0.1, 0.1, 0.2]:
        per[('len', lam)] = ev([f + lam * z(np.log(nch)) for f in FINAL])
    report(per, 'misc, whole family', top=8)
    for fam in ['recip', 'qpp', 'len']:
        report({k: v for k, v in per.items() if k[0] in ('A', fam)}, f'family {fam}', top=3)
