import pickle, numpy as np, lib, prep, time
d = pickle.load(open('/tmp/rr/cache/data.pkl','rb'))
D,Q,C = d['D'],d['Q'],d['chunks']
id2i = {x['id']:i for i,x in enumerate(D)}
rels = [set(id2i[r] for r in q['relevant_doc_ids'] if r in id2i) for q in Q]
cd = np.array([c['doc'] for c in C])
t=time.time()
bm = lib.BM25([[c['title'] for c in C],["\n".join(c['hp']) for c in C],[c['text'] for c in C]],[2.0,1.5,1.0])
print('index',time.time()-t, bm.W.shape)
res=[]
for q in Q:
    st = lib.query_stems(prep.query_text(q))
    w = {s:1.0 for s in st}
    res.append(lib.chunk_to_doc(bm.score(bm.qvec(w)), cd, len(D)))
print('bm25 max-chunk', lib.evaluate(res, rels).mean(0))
