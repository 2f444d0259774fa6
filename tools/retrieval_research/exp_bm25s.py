from common import *
per={}
def rrf_rank(s, k=60):
    r = np.empty(len(s)); r[np.argsort(-s, kind='stable')] = np.arange(1,len(s)+1); return 1/(k+r)
for alpha in [0,0.5]:
  out = {m:[] for m in ['rrf60','rrf10','sumnorm','sumraw','sumsq']}
  for qi,units in enumerate(QU):
    S=[]
    for u in units:
        st = lib.query_stems(u)
        if not st: continue
        S.append(lib.chunk_to_doc(bm.score(bm.qvec(qweights(st, bm.idf, alpha))), cd, ND))
    S=np.array(S); S[S<0]=0
    out['rrf60'].append(sum(rrf_rank(s,60) for s in S))
    out['rrf10'].append(sum(rrf_rank(s,10) for s in S))
    mx = S.max(1,keepdims=True)+1e-9
    out['sumnorm'].append((S/mx).sum(0))
    out['sumraw'].append(S.sum(0))
    out['sumsq'].append(np.sqrt(S).sum(0))
  for m,v in out.items():
    per[('sent',m,alpha)] = ev(v); print(m, alpha, per[('sent',m,alpha)].mean(0).round(4))
pickle.dump(per, open('/tmp/rr/cache/per_bm25s.pkl','wb'))
