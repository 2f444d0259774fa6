"""(d) intent coverage: score docs per query paragraph, pool with max / top-2 mean / logsumexp, add as a third signal.
per paragraph p (>= MINST stems): f_p = 0.5 z(bm_p) + 0.5 z(dense_p)  (bm_p: doc BM25 of p's stems, log weights;
dense_p: doc best-chunk cosine with MiniLM(p)); final' = (1-w)*final + w*z(pool_p f_p)."""
from ra import *

MINST = 5


def para_scores(qi):
    F, Bz, Dz = [], [], []
    for st, e in zip(PST[qi], QPs[qi]):
        if len(st) < MINST: continue
        b = z(lib.chunk_to_doc(bm.score(bm.qvec(logw_counts(Counter(st)))), cd, ND))
        d = z(lib.chunk_to_doc(E @ e, cd, ND))
        Bz.append(b); Dz.append(d); F.append(0.5 * b + 0.5 * d)
    return np.array(F), np.array(Bz), np.array(Dz)


def pools(M):
    s = -np.sort(-M, axis=0)
    return {'max': s[0], 'top2': s[:2].mean(0), 'lse1': np.log(np.exp(M).sum(0)), 'lse.5': 0.5 * np.log(np.exp(M / 0.5).sum(0))}


if __name__ == '__main__':
    PS = [para_scores(qi) for qi in range(NQ)]
    per = {('A',): A}
    for si, sn in enumerate(['fused', 'bm', 'dense']):
        sig = [pools(P[si]) for P in PS]
        for pn in sig[0]:
            xs = [s[pn] for s in sig]
            if sn == 'fused': print('alone', sn, pn, ev(xs).mean(0).round(4))
            for w in [0.1, 0.2, 0.3]:
                per[(sn, pn, w)] = ev([(1 - w) * f + w * z(x) for f, x in zip(FINAL, xs)])
    report(per, 'paragraph-pooled third signal, whole family', top=10)
    for sn in ['fused', 'bm', 'dense']:
        report({k: v for k, v in per.items() if k[0] in ('A', sn)}, f'family {sn}', top=3)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_multi.pkl', 'wb'))
