from common import *
import itertools
per = {}
idf = bm.idf
for agg in ['max','sumtop2','sumtop3']:
  for alpha in [0,0.5,1]:
    for topn in [None,60,40,25,15]:
      for ip in [0,1]:
        res=[]
        for s in QS:
            w = qweights(s, idf, alpha, topn, ip)
            res.append(lib.chunk_to_doc(bm.score(bm.qvec(w)), cd, ND, agg))
        per[('chunk',agg,alpha,topn,ip)] = ev(res)
for alpha in [0,0.5,1]:
    for topn in [None,60,40,25,15]:
      for ip in [0,1]:
        res=[bmd.score(bmd.qvec(qweights(s, idf, alpha, topn, ip))) for s in QS]
        per[('doc','-',alpha,topn,ip)] = ev(res)
rows = sorted(per.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:25]: print(k, v.mean(0).round(4))
print('baseline', per[('chunk','max',0,None,0)].mean(0))
print('CV', cv_select(per))
pickle.dump(per, open('/tmp/rr/cache/per_bm25.pkl','wb'))
