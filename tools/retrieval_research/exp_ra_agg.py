"""(d) chunk->doc aggregation: doc = best chunk + g * second-best chunk (per component), then Recipe A fusion."""
from ra import *

Q1 = [dense_doc(qi, return_q=True)[1] for qi in range(NQ)]


def top2(s):
    o = np.lexsort((-s, cd)); d = cd[o]; first = np.r_[True, d[1:] != d[:-1]]
    b1 = np.full(ND, -1e9); b1[d[first]] = s[o][first]
    sec = np.r_[False, first[:-1]] & ~first      # second position within each doc's run
    b2 = np.zeros(ND); b2[d[sec]] = s[o][sec]
    has2 = np.zeros(ND, bool); has2[d[sec]] = True
    return b1, np.where(has2, b2, b1)            # single-chunk docs: second := first (no length penalty)


if __name__ == '__main__':
    BC = [top2(bm.score(bm.qvec(logw_counts(Counter(s))))) for s in QS]
    DC = [top2(E @ q) for q in Q1]
    assert np.allclose(BC[0][0], BM[0]) and np.allclose(DC[0][0], DN[0])
    per = {}
    for gb in [0, 0.25, 0.5]:
        for gd in [0, 0.25, 0.5]:
            per[(gb, gd)] = ev([fuse(b[0] + gb * b[1], d[0] + gd * d[1]) for b, d in zip(BC, DC)])
    report(per, 'aggregation (g_bm, g_dense)', top=6)
