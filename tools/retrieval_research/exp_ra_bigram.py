"""(d) phrase evidence: BM25 over adjacent-stem bigrams (stopwords removed before pairing, as the query side does),
added to Recipe A as a third signal: final' = (1-w)*final + w*z(doc bigram BM25), or replacing part of the unigram BM25.
Also a diagnostic (not deployable): drop query paragraphs that occur verbatim in >=3 queries (role-play boilerplate)."""
from ra import *


def bigrams(text):
    st = lib.query_stems(text)
    return [a + '_' + b for a, b in zip(st, st[1:])]


class Pre(lib.BM25):
    """BM25 over pre-tokenised fields (tokens given as lists)."""
    def __init__(self, toks, boosts):
        a = lib.analyze; lib.analyze = lambda t: t
        try: super().__init__(toks, boosts)
        finally: lib.analyze = a


bg = Pre([[bigrams(c['title']) for c in C], [bigrams("\n".join(c['hp'])) for c in C], [bigrams(c['text']) for c in C]], [2.0, 1.5, 1.0])

if __name__ == '__main__':
    QB = [bigrams(t) for t in QT]
    BG = [lib.chunk_to_doc(bg.score(bg.qvec(logw_counts(Counter(b)))), cd, ND) for b in QB]
    print('bigram BM25 alone', ev(BG).mean(0).round(4))
    per = {('A',): A}
    for w in [0.1, 0.2, 0.3]:
        per[('third', w)] = ev([(1 - w) * f + w * z(x) for f, x in zip(FINAL, BG)])
        per[('split_bm', w)] = ev([(0.5 - w) * z(b) + w * z(x) + 0.5 * z(d) for b, x, d in zip(BM, BG, DN)])
    report(per, 'bigram BM25', top=7)
    # diagnostic: boilerplate paragraphs shared across queries
    cnt = Counter(p for ps in paras for p in set(ps)); bp = {p for p, c in cnt.items() if c >= 3}
    print('boilerplate paragraphs (>=3 queries):', len(bp), 'occurrences', sum(p in bp for ps in paras for p in ps), 'of', sum(map(len, paras)))
    keep = [np.array([p not in bp for p in ps], float) for ps in paras]
    keep = [k if k.sum() else np.ones_like(k) for k in keep]
    bm2 = [bm_doc(qi, keep[qi]) for qi in range(NQ)]; dn2 = [dense_doc(qi, keep[qi]) for qi in range(NQ)]
    R = ev([fuse(b, d) for b, d in zip(bm2, dn2)]); m, lo, hi, p = boot_ci(R, A)
    print('DIAG drop boilerplate paragraphs:', R.mean(0).round(4), 'dA %+.4f [%+.4f,%+.4f]' % (m, lo, hi))
