"""(a) Score regularisation on a doc-doc graph (cluster hypothesis) on top of Recipe A's final doc scores.
final'(d) = final(d) + lam * agg_{n in kNN(d)} final(n); agg = mean or similarity-weighted mean.
scope 'all': kNN over the whole corpus; 'topN': only the top-N candidates are re-scored, kNN among them."""
from ra import *
from sklearn.feature_extraction.text import TfidfVectorizer

# --- doc-doc similarities (no doc ids / id-derived categories) ---
Cn = np.zeros((ND, E.shape[1])); np.add.at(Cn, cd, E); Cn /= np.linalg.norm(Cn, axis=1, keepdims=True)
an = lambda t: [s for s in lib.analyze(t) if s not in lib.STOP]
tf_body = TfidfVectorizer(analyzer=an, sublinear_tf=True, min_df=2).fit_transform([x['title'] + "\n" + x['content'] for x in D])
tf_head = TfidfVectorizer(analyzer=an, sublinear_tf=True).fit_transform([x['title'] + "\n" + doc_md_headings(x['content']) for x in D])
SIMS = {'centroid': Cn @ Cn.T, 'tfidf_body': (tf_body @ tf_body.T).toarray(), 'tfidf_head': (tf_head @ tf_head.T).toarray()}
for S in SIMS.values(): np.fill_diagonal(S, -np.inf)


def smooth(f, S, lam, k, agg, N=None):
    if N is None:
        nb = np.argpartition(-S, k, axis=1)[:, :k]; sw = np.take_along_axis(S, nb, 1)
        w = np.ones_like(sw) if agg == 'mean' else np.maximum(sw, 0) + 1e-9
        return f + lam * (w * f[nb]).sum(1) / w.sum(1)
    top = np.argsort(-f)[:N]; Ss = S[np.ix_(top, top)]; ft = f[top]
    nb = np.argpartition(-Ss, k, axis=1)[:, :k]; sw = np.take_along_axis(Ss, nb, 1)
    w = np.ones_like(sw) if agg == 'mean' else np.maximum(sw, 0) + 1e-9
    out = np.full(ND, -1e9); out[top] = ft + lam * (w * ft[nb]).sum(1) / w.sum(1)
    return out


if __name__ == '__main__':
    per = {('A',): A}
    for sn, S in SIMS.items():
        for scope in [None, 50]:
            for agg in ['mean', 'simw']:
                for k in [3, 5, 10]:
                    for lam in [0.1, 0.2, 0.3, 0.5]:
                        per[(sn, scope, agg, k, lam)] = ev([smooth(f, S, lam, k, agg, scope) for f in FINAL])
    report(per, 'graph smoothing, whole family')
    for sn in SIMS:
        report({k: v for k, v in per.items() if k[0] in ('A', sn)}, f'family {sn}', top=3)
    for scope in [None, 50]:
        report({k: v for k, v in per.items() if k[0] == 'A' or k[1] == scope}, f'family scope={scope}', top=3)
    pickle.dump(per, open('/tmp/rr/cache/per_ra_graph.pkl', 'wb'))
