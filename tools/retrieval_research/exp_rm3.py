from common import *
import scipy.sparse as sp
# doc-level tf matrix (content+title) for feedback term distributions
V=len(bmd.vocab)
rows,cols,vals=[],[],[]
for i,x in enumerate(D):
    c=Counter(lib.analyze(x['title']+"\n"+x['content']))
    for s,n in c.items():
        j=bmd.vocab.get(s)
        if j is not None and s not in lib.STOP: rows.append(i);cols.append(j);vals.append(n)
TF=sp.csr_matrix((np.array(vals,float),(rows,cols)),shape=(ND,V))
P=sp.diags(1/np.asarray(TF.sum(1)).ravel())@TF  # p(w|d)
idf=bmd.idf
per={}
base=[]
for s in QS:
    base.append(bm.qvec(qweights(s, bm.idf, 0.5)))
first=[lib.chunk_to_doc(bm.score(q),cd,ND) for q in base]
for fbd in [3,5,10]:
  for fbt in [10,20,40]:
    for lam in [0.3,0.5,0.7]:
      res=[]
      for q,f in zip(base,first):
        top=np.argsort(-f)[:fbd]; w=f[top]; w=w/w.sum()
        rm=np.asarray(P[top].T@w).ravel()*(idf>0)
        sel=np.argsort(-rm)[:fbt]; e=np.zeros(V); e[sel]=rm[sel]; e/=e.sum()
        qn=np.zeros(V); qn[:len(q)]=q; qn/=qn.sum()
        qq=lam*qn+(1-lam)*e
        res.append(lib.chunk_to_doc(bm.score(qq[:bm.W.shape[1]]),cd,ND))
      per[('rm3',fbd,fbt,lam)]=ev(res)
rows=sorted(per.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:10]: print(k, v.mean(0).round(4))
print('CV',cv_select(per))
pickle.dump(per, open('/tmp/rr/cache/per_rm3.pkl','wb'))
