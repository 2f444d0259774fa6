"""Final recipe evaluation + nested CV over its whole parameter family."""
from common import *
from sklearn.linear_model import LogisticRegression
paras,wins,QPs=load_paragraphs()
def bm_chunks(stems, tfmode):
    c=Counter(stems)
    w={k:(1+np.log(v)) if tfmode=='log' else (np.sqrt(v) if tfmode=='sqrt' else 1.0) for k,v in c.items()}
    return bm.score(bm.qvec(w))
def dense_chunks(units, k, beta):
    q=nv(units.mean(0)); s=E@q
    if k>0:
        top=np.argsort(-s)[:k]; q=nv(q+beta*E[top].mean(0)); s=E@q
    return s
per={}; single={}
cache_b={tm:[bm_chunks(s,tm) for s in QS] for tm in ['one','log','sqrt']}
for tm in ['one','log','sqrt']:
    single[('bm',tm)]=ev([lib.chunk_to_doc(b,cd,ND) for b in cache_b[tm]])
for qsrc,U in [('para',QPs),('sent',QSENT)]:
  for k,beta in [(0,0),(3,0.5),(3,1.0),(5,0.5),(5,1.0),(10,0.5),(10,1.0)]:
    dch=[dense_chunks(u,k,beta) for u in U]
    ddoc=[lib.chunk_to_doc(x,cd,ND) for x in dch]
    single[('dense',qsrc,k,beta)]=ev(ddoc)
    for tm in ['one','log','sqrt']:
      bdoc=[lib.chunk_to_doc(b,cd,ND) for b in cache_b[tm]]
      for w in [0.3,0.4,0.5,0.6,0.7]:
        per[('doclvl',tm,qsrc,k,beta,w)]=ev([(1-w)*z(a)+w*z(b) for a,b in zip(bdoc,ddoc)])
        per[('chunklvl',tm,qsrc,k,beta,w)]=ev([lib.chunk_to_doc((1-w)*z(a)+w*z(b),cd,ND) for a,b in zip(cache_b[tm],dch)])
for k,v in single.items(): print('single',k,v.mean(0).round(4))
rows=sorted(per.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:12]: print(k, v.mean(0).round(4))
print('NESTED CV whole family (%d configs)'%len(per), cv_select(per,n_rep=20))
for lvl in ['doclvl','chunklvl']:
    sub={k:v for k,v in per.items() if k[0]==lvl}; print('NESTED CV',lvl, cv_select(sub,n_rep=20))
rec=('doclvl','log','para',5,1.0,0.5); print('RECIPE A',rec, per[rec].mean(0).round(4))
rec=('chunklvl','log','para',5,1.0,0.5); print('RECIPE A chunk-level',rec, per[rec].mean(0).round(4))
rec=('doclvl','log','para',0,0,0.5); print('RECIPE B (no PRF)',rec, per[rec].mean(0).round(4))
sub={k:v for k,v in per.items() if k[:3]==('doclvl','log','para')}; print('CV recipe family (k,beta,w) with bm=log,para,doc', cv_select(sub,n_rep=20))
sub={k:v for k,v in per.items() if k[:5]==('doclvl','log','para',5,1.0)}; print('CV w only', cv_select(sub,n_rep=20))
# sensitivity in w for recipe A
print('w sweep A', [(w, per[('doclvl','log','para',5,1.0,w)][:,0].mean().round(4)) for w in [0.3,0.4,0.5,0.6,0.7]])
# RRF alternative with same components
bdoc=[lib.chunk_to_doc(b,cd,ND) for b in cache_b['log']]
ddoc=[lib.chunk_to_doc(dense_chunks(u,5,1.0),cd,ND) for u in QPs]
for kk in [10,30,60]:
    print('RRF k',kk, ev([rrfs(a,kk)+rrfs(b,kk) for a,b in zip(bdoc,ddoc)]).mean(0).round(4))
# paired per-query comparison vs baseline hybrid
base=ev([0.5*rrfs(lib.chunk_to_doc(a,cd,ND))+0.5*rrfs(lib.chunk_to_doc(E@q,cd,ND)) for a,q in zip(cache_b['one'],QF)])
A=per[('doclvl','log','para',5,1.0,0.5)]
print('baseline RRF(bm one, dense full)', base.mean(0).round(4), 'A wins/ties/losses', (A[:,0]>base[:,0]+1e-9).sum(), (abs(A[:,0]-base[:,0])<1e-9).sum(), (A[:,0]<base[:,0]-1e-9).sum())
# LR weights on z features for deployment
Xs=[];Ys=[]
for qi in range(len(Q)):
    f=np.stack([z(bdoc[qi]),z(ddoc[qi])],1); cand=np.argsort(-(f.sum(1)))[:100]
    Xs.append(f[cand]); Ys.append(np.array([d in rels[qi] for d in cand],int))
m=LogisticRegression(C=1.0,max_iter=1000).fit(np.concatenate(Xs),np.concatenate(Ys))
print('LR coefs (bm_z, dense_z), intercept', m.coef_, m.intercept_, 'implied dense weight', m.coef_[0,1]/m.coef_.sum())
pickle.dump((per,single),open('/tmp/rr/cache/per_final.pkl','wb'))
