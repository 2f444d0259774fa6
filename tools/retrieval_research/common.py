import pickle, numpy as np, lib, prep, re
from collections import Counter
d = pickle.load(open('/tmp/rr/cache/data.pkl','rb'))
D,Q,C,QU = d['D'],d['Q'],d['chunks'],d['qunits']
id2i = {x['id']:i for i,x in enumerate(D)}
rels = [set(id2i[r] for r in q['relevant_doc_ids'] if r in id2i) for q in Q]
cd = np.array([c['doc'] for c in C]); ND=len(D)
bm = lib.BM25([[c['title'] for c in C],["\n".join(c['hp']) for c in C],[c['text'] for c in C]],[2.0,1.5,1.0])
def doc_md_headings(md):
    return "\n".join(l.lstrip('#').strip() for l in md.split('\n') if l.lstrip().startswith('#'))
bmd = lib.BM25([[x['title'] for x in D],[doc_md_headings(x['content']) for x in D],[x['content'] for x in D]],[2.0,1.5,1.0], vocab=dict(bm.vocab))
QT = [prep.query_text(q) for q in Q]
QS = [lib.query_stems(t) for t in QT]
def qweights(stems, idf, alpha=0.0, topn=None, idfpow=0.0, minidf=0.0):
    tf = Counter(stems)
    items = []
    for s,c in tf.items():
        j = bm.vocab.get(s)
        i = idf[j] if j is not None else 0.0
        items.append((s,c,i))
    items = [x for x in items if x[2] >= minidf]
    if topn: items = sorted(items, key=lambda x:-x[2])[:topn]
    return {s: (c**alpha) * (i**idfpow if i>0 else 0) for s,c,i in items}
def ev(res): return lib.evaluate(res, rels)
def cv_select(per_cfg, n_rep=10, k=5, seed=0):
    """per_cfg: dict name -> (nq,3) per-query metrics. Repeated k-fold: pick best train nDCG config, report test means."""
    names = list(per_cfg); M = np.stack([per_cfg[n] for n in names])  # cfg x q x 3
    nq = M.shape[1]; rng = np.random.default_rng(seed); outs=[]; picks=Counter()
    for r in range(n_rep):
        perm = rng.permutation(nq); folds = np.array_split(perm, k)
        test = np.zeros((nq,3))
        for f in folds:
            tr = np.setdiff1d(perm, f)
            b = int(np.argmax(M[:,tr,0].mean(1))); picks[names[b]]+=1
            test[f] = M[b,f]
        outs.append(test.mean(0))
    return np.mean(outs,0), picks.most_common(3)
E = np.load('/tmp/rr/cache/chunks.npy'); QF = np.load('/tmp/rr/cache/qfull.npy'); QSE = np.load('/tmp/rr/cache/qsent.npy')
off = np.cumsum([0]+[len(u) for u in QU])
QSENT = [QSE[off[i]:off[i+1]] for i in range(len(QU))]

# Shared by the experiment scripts.
def z(s): s=np.asarray(s,float); return (s-s.mean())/(s.std()+1e-9)
def nv(v): return v/np.linalg.norm(v)
def mm(s, top=100):
    s=np.asarray(s,float); t=np.sort(s)[-top:]; lo,hi=t[0],t[-1]; return np.clip((s-lo)/(hi-lo+1e-9),0,1)
def rrfs(s,k=60):
    r=np.empty(len(s)); r[np.argsort(-s,kind='stable')]=np.arange(1,len(s)+1); return 1/(k+r)
def load_paragraphs():
    """Query paragraphs and 128-token windows (comps2/prep2 caches) and each query's paragraph vectors."""
    paras,wins=pickle.load(open('/tmp/rr/cache/pw.pkl','rb'))
    QP=np.load('/tmp/rr/cache/qpara.npy')
    o=np.cumsum([0]+[len(x) for x in paras])
    return paras,wins,[QP[o[i]:o[i+1]] for i in range(len(paras))]
