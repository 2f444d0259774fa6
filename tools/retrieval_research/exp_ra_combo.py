"""Combination of the three small positives: BM25 paragraph salience (exp_ra_para 'bm sal_pow 1'),
paragraph-pooled dense top-2 third signal (exp_ra_multi), top-50 tfidf-body kNN smoothing (exp_ra_graph). Joint grid + CV."""
from ra import *
from exp_ra_graph import SIMS, smooth
from exp_ra_multi import para_scores

SAL = []
for qi in range(NQ):
    S = QPs[qi] @ E.T; SAL.append(np.maximum(S.max(1) - S.mean(1), 1e-6))
BMS = [bm_doc(qi, SAL[qi]) for qi in range(NQ)]
TOP2 = [(lambda M: -np.sort(-M, axis=0)[:2].mean(0))(para_scores(qi)[2]) for qi in range(NQ)]
St = SIMS['tfidf_body']

if __name__ == '__main__':
    per = {}
    for sal in [0, 1]:
        base = [fuse(b, d) for b, d in zip(BMS if sal else BM, DN)]
        for wm in [0, 0.05, 0.1, 0.15]:
            f1 = [(1 - wm) * f + wm * z(x) for f, x in zip(base, TOP2)]
            for k in [3, 5]:
                for lam in [0, 0.1, 0.2, 0.3]:
                    if lam == 0 and k == 5: continue
                    per[(sal, wm, k, lam)] = ev([smooth(f, St, lam, k, 'mean', 50) if lam else f for f in f1])
    assert np.allclose(per[(0, 0, 3, 0)], A)
    report(per, 'combo (sal, w_multi, k, lam)', top=10)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_combo.pkl', 'wb'))
