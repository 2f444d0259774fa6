"""(d) query-independent corpus-centrality prior: final + lam * z(c), c(d) = mean similarity of d to all other docs
(centroid cosine or tfidf-body cosine) or its kNN degree. No qrels used to build the prior."""
from ra import *
from exp_ra_graph import SIMS

if __name__ == '__main__':
    per = {('A',): A}
    for sn, S in SIMS.items():
        S0 = np.where(np.isinf(S), 0.0, S)
        pri = {'mean': S0.mean(1), 'knn10': np.sort(S0, 1)[:, -10:].mean(1)}
        for pn, c in pri.items():
            for lam in [-0.2, -0.1, 0.1, 0.2, 0.3]:
                per[(sn, pn, lam)] = ev([f + lam * z(c) for f in FINAL])
    report(per, 'centrality prior', top=6)
