"""(d) second-round feedback from Recipe A's top-m fused docs.
d1 'rm_sim': final' = final + lam * z(mean_{t in top-m, t!=d} sim(d,t))   (doc-level relevance-model smoothing)
d2 'bm_title': BM25 query counts += gamma per stem occurrence in the titles(+headings) of the top-m docs; re-fuse
d3 'dense_fb': q2 = normalize(q1 + beta * mean(best chunk emb of top-m docs)); re-fuse
d4 both d2+d3."""
from ra import *
from exp_ra_graph import SIMS

TSTEM = [lib.query_stems(x['title']) for x in D]
HSTEM = [lib.query_stems(x['title'] + "\n" + doc_md_headings(x['content'])) for x in D]
Q1 = [dense_doc(qi, return_q=True)[1] for qi in range(NQ)]


def best_chunk_emb(qi, docs):
    s = E @ Q1[qi]; out = []
    for d in docs:
        idx = np.where(cd == d)[0]; out.append(E[idx[np.argmax(s[idx])]])
    return np.array(out)


if __name__ == '__main__':
    per = {('A',): A}
    tops = {m: [np.argsort(-f)[:m] for f in FINAL] for m in [3, 5, 10]}
    for sn in ['centroid', 'tfidf_body']:
        S = np.where(np.isinf(SIMS[sn]), 0.0, SIMS[sn])
        for m in [3, 5, 10]:
            fb = [S[:, T].sum(1) / np.where(np.isin(np.arange(ND), T), m - 1, m) for T in tops[m]]
            for lam in [0.1, 0.2, 0.3, 0.5]:
                per[('rm_sim', sn, m, lam)] = ev([f + lam * z(b) for f, b in zip(FINAL, fb)])
    for m in [3, 5, 10]:
        bmx = {}
        for src, ST in [('title', TSTEM), ('head', HSTEM)]:
            for g in [0.25, 0.5, 1.0]:
                r = []
                for qi in range(NQ):
                    c = Counter(QS[qi])
                    for d in tops[m][qi]:
                        for s in ST[d]: c[s] += g
                    r.append(lib.chunk_to_doc(bm.score(bm.qvec(logw_counts(c))), cd, ND))
                bmx[(src, g)] = r
                per[('bm_title', src, m, g)] = ev([fuse(b, d) for b, d in zip(r, DN)])
        for beta in [0.25, 0.5, 1.0]:
            dn = []
            for qi in range(NQ):
                q2 = nv(Q1[qi] + beta * best_chunk_emb(qi, tops[m][qi]).mean(0))
                dn.append(lib.chunk_to_doc(E @ q2, cd, ND))
            per[('dense_fb', m, beta)] = ev([fuse(b, d) for b, d in zip(BM, dn)])
            for (src, g), r in bmx.items():
                if g == 0.5: per[('both_fb', src, m, beta, g)] = ev([fuse(b, d) for b, d in zip(r, dn)])
    report(per, 'second-round feedback, whole family', top=10)
    for fam in ['rm_sim', 'bm_title', 'dense_fb', 'both_fb']:
        report({k: v for k, v in per.items() if k[0] in ('A', fam)}, f'family {fam}', top=4)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_prf.pkl', 'wb'))
