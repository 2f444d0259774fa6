"""(b) query paragraph position weighting and (c) paragraph salience, applied to the dense paragraph mean
(q0 = normalize(sum_i w_i e_i), then the same 5-chunk PRF) and/or the BM25 term counts
(c(t) = sum_i w_i c_i(t) with w max-normalised, weight 1+ln c for c>=1 else c), fused as Recipe A."""
from ra import *

def schemes(qi):
    U = QPs[qi]; m = len(U); i = np.arange(m)
    S = U @ E.T                                   # paragraph x chunk cosine
    sal = S.max(1) - S.mean(1)                    # distinctiveness vs corpus
    out = {}
    for p in [-0.5, -0.25, 0.25, 0.5, 1.0, 2.0]: out[('pos', p)] = 1 / (1 + i) ** p
    for t in [2, 5, 10]: out[('exp', t)] = np.exp(-i / t)
    for g in [1, 2, 4, 8]: out[('sal_pow', g)] = np.maximum(sal, 1e-6) ** g
    for t in [0.02, 0.05, 0.1]: out[('sal_soft', t)] = np.exp((sal - sal.max()) / t)
    out[('maxsim_pow', 4)] = np.maximum(S.max(1), 1e-6) ** 4
    return out

if __name__ == '__main__':
    W = [schemes(qi) for qi in range(NQ)]
    names = list(W[0])
    per = {('A',): A}; single = {}
    for nm in names:
        dn = [dense_doc(qi, W[qi][nm]) for qi in range(NQ)]
        bmw = [bm_doc(qi, W[qi][nm]) for qi in range(NQ)]
        single[('dense',) + nm] = ev(dn); single[('bm',) + nm] = ev(bmw)
        per[('dense',) + nm] = ev([fuse(b, d) for b, d in zip(BM, dn)])
        per[('bm',) + nm] = ev([fuse(b, d) for b, d in zip(bmw, DN)])
        per[('both',) + nm] = ev([fuse(b, d) for b, d in zip(bmw, dn)])
    print('single components: Recipe A dense', ev(DN).mean(0).round(4), 'bm', BM_ONLY.mean(0).round(4))
    for k, v in single.items(): print('  ', k, v.mean(0).round(4))
    report(per, 'paragraph weighting, whole family', top=10)
    for fam in ['pos', 'exp', 'sal_pow', 'sal_soft']:
        report({k: v for k, v in per.items() if len(k) == 1 or k[1] == fam}, f'family {fam}', top=3)
    for tgt in ['dense', 'bm', 'both']:
        report({k: v for k, v in per.items() if k[0] in ('A', tgt)}, f'target {tgt}', top=3)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_para.pkl', 'wb'))
