"""(d) a third standardised signal added to Recipe A: final' = (1-w3)*final + w3*z(x).
x in: title dense (MiniLM(title) . q1), title+headings dense, doc centroid . q1, late interaction
(mean over query paragraphs of the doc's best chunk cosine; and its top-3-paragraph variant), doc-level BM25 (log weights)."""
from ra import *
import os

TC = '/tmp/rr/cache/titles.npy'
if not os.path.exists(TC):
    import enc
    th = [x['title'] + "\n" + doc_md_headings(x['content']).replace("\n", "; ") for x in D]
    np.save(TC, np.stack([enc.encode([x['title'] for x in D]), enc.encode(th)]))
ET, ETH = np.load(TC)
Cn = np.zeros((ND, E.shape[1])); np.add.at(Cn, cd, E); Cn /= np.linalg.norm(Cn, axis=1, keepdims=True)
Q1 = [dense_doc(qi, return_q=True)[1] for qi in range(NQ)]


def late(qi, top=None):
    S = QPs[qi] @ E.T                                           # para x chunk
    M = np.full((S.shape[0], ND), -1.0)
    for p in range(S.shape[0]): np.maximum.at(M[p], cd, S[p])   # para x doc best-chunk cosine
    if top: M = -np.sort(-M, axis=0)[:top]                      # per doc: mean of its top paragraphs
    return M.mean(0)


if __name__ == '__main__':
    X = {'title': [ET @ q for q in Q1], 'title_head': [ETH @ q for q in Q1], 'centroid': [Cn @ q for q in Q1],
         'late_all': [late(qi) for qi in range(NQ)], 'late_top3': [late(qi, 3) for qi in range(NQ)],
         'bmd_log': [bmd.score(bmd.qvec(logw_counts(Counter(s)))) for s in QS]}
    per = {('A',): A}
    for nm, xs in X.items():
        print('alone', nm, ev(xs).mean(0).round(4))
        for w3 in [0.1, 0.2, 0.3]:
            per[(nm, w3)] = ev([(1 - w3) * f + w3 * z(x) for f, x in zip(FINAL, xs)])
    report(per, 'third signal, whole family', top=10)
    for nm in X:
        report({k: v for k, v in per.items() if k[0] in ('A', nm)}, f'family {nm}', top=2)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_third.pkl', 'wb'))
