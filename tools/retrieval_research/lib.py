import re, pickle, math
import numpy as np
import scipy.sparse as sp
import Stemmer

ST = Stemmer.Stemmer("english")
STOP = set("""a about above after again all am an and any are as at be because been before being below between both but by can
could did do does doing don't down during each few for from further get got had has have having he her here hers herself
him himself his how i i'm if in into is it it's its itself just let me more most my myself no nor not now of
off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves hi hello hey please thanks thank pls plz im ive dont cant
can't want need know tell help question also ok okay yes there's what's how's s t d ll m re ve long take takes
took much many soon often possible able anything something way ways anyone someone guys u ur""".split())

_tok = re.compile(r"[^\W_]+", re.UNICODE)
_stem_cache = {}
def stem(w):
    s = _stem_cache.get(w)
    if s is None:
        s = ST.stemWord(w); _stem_cache[w] = s
    return s

def analyze(text):
    """tantivy en_stem: simple tokenizer (alphanumeric runs), lowercase, drop >=40 bytes, snowball english."""
    return [stem(t) for t in _tok.findall(text.lower()) if len(t.encode()) < 40]

def words(text):
    """text.rs words(): alnum runs with inner apostrophes."""
    out = re.findall(r"[^\W_]+(?:['’][^\W_]+)*", text.lower())
    return [w.replace("’", "'") for w in out]

def query_stems(text):
    """ordered list of (stem) for every non-stopword word occurrence (not deduplicated)."""
    out = []
    for w in words(text):
        if w in STOP: continue
        out.extend(analyze(w))
    return out


class BM25:
    """Multi-field BM25 (tantivy-like): score(chunk) = sum_t qw_t * sum_f boost_f * idf_f(t) * tf(k1+1)/(tf+k1(1-b+b len/avg))."""
    def __init__(self, fields, boosts, k1=1.2, b=0.75, vocab=None):
        self.vocab = vocab if vocab is not None else {}
        toks = [[analyze(t) for t in f] for f in fields]
        for f in toks:
            for d in f:
                for w in d:
                    if w not in self.vocab: self.vocab[w] = len(self.vocab)
        V = len(self.vocab); n = len(fields[0]); self.n = n
        W = None; self.df = np.zeros(V)
        for f, boost in zip(toks, boosts):
            rows, cols, vals = [], [], []
            for i, d in enumerate(f):
                c = {}
                for w in d: c[self.vocab[w]] = c.get(self.vocab[w], 0) + 1
                for j, v in c.items(): rows.append(i); cols.append(j); vals.append(v)
            tf = sp.csr_matrix((np.array(vals, float), (rows, cols)), shape=(n, V))
            lens = np.array([len(d) for d in f], float); avg = max(lens.mean(), 1e-9)
            df = np.asarray((tf > 0).sum(0)).ravel()
            self.df = np.maximum(self.df, df)
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
            tfc = tf.tocoo()
            norm = k1 * (1 - b + b * lens[tfc.row] / avg)
            v = tfc.data * (k1 + 1) / (tfc.data + norm) * idf[tfc.col] * boost
            M = sp.csr_matrix((v, (tfc.row, tfc.col)), shape=(n, V))
            W = M if W is None else W + M
        self.W = W.tocsc()
        self.idf = np.log(1 + (n - self.df + 0.5) / (self.df + 0.5))  # query_terms idf (max df over fields)

    def qvec(self, weights):
        """weights: dict stem->weight"""
        q = np.zeros(self.W.shape[1])
        for s, w in weights.items():
            j = self.vocab.get(s)
            if j is not None: q[j] += w
        return q

    def score(self, q):
        return self.W @ q


def ndcg10(ranked, rel):
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in rel)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, len(rel))))
    return dcg / idcg if idcg else 0.0

def recall10(ranked, rel):
    return len(set(ranked[:10]) & rel) / len(rel) if rel else 0.0

def mrr(ranked, rel):
    for i, d in enumerate(ranked):
        if d in rel: return 1 / (i + 1)
    return 0.0

def evaluate(doc_scores_list, rels):
    """doc_scores_list: list of arrays (n_docs,) ; rels: list of sets of doc indices"""
    out = np.zeros((len(rels), 3))
    for i, (s, r) in enumerate(zip(doc_scores_list, rels)):
        rk = list(np.argsort(-s, kind="stable")[:100])
        out[i] = (ndcg10(rk, r), recall10(rk, r), mrr(rk, r))
    return out

def chunk_to_doc(scores, chunk_doc, n_docs, mode="max", fill=-1e9):
    """aggregate chunk scores to doc scores. mode: max | sumtop2 | sumtop3"""
    if mode == "max":
        out = np.full(n_docs, fill)
        np.maximum.at(out, chunk_doc, scores)
        return out
    k = int(mode[-1])
    order = np.lexsort((-scores, chunk_doc))
    out = np.zeros(n_docs); cnt = np.zeros(n_docs, int)
    for i in order:
        d = chunk_doc[i]
        if cnt[d] < k: out[d] += scores[i]; cnt[d] += 1
    return out
