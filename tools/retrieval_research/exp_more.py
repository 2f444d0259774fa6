from common import *
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
paras,wins,QPs=load_paragraphs()
def logw(st): return {k:1+np.log(v) for k,v in Counter(st).items()}
# 1) BM25 over sentences filtered/weighted by dense max-sim to corpus
for tau in [0.3,0.35,0.4,0.45]:
  for mode in ['filter','weight']:
    res=[]
    for qi,units in enumerate(QU):
        ms=(QSENT[qi]@E.T).max(1); w={}
        for u,m in zip(units,ms):
            f = (m>=tau)*1.0 if mode=='filter' else max(m-tau,0)
            if f<=0: continue
            for s in lib.query_stems(u): w[s]=w.get(s,0)+f
        if not w: w={s:1.0 for s in QS[qi]}
        w={k:1+np.log(v) if v>=1 else v for k,v in w.items()}
        res.append(lib.chunk_to_doc(bm.score(bm.qvec(w)),cd,ND))
    X[f'bmf_{mode}{tau}']=res
    r=ev(res).mean(0).round(4)
    f=ev([0.5*z(a)+0.5*z(b) for a,b in zip(res,X['dpara'])]).mean(0).round(4)
    print('bm sent',mode,tau,r,'fused w/ dpara z.5',f)
# 2) chunk-level fusion then max
res=[]
for qi in range(len(Q)):
    b=bm.score(bm.qvec(logw(QS[qi]))); dd=E@nv(QPs[qi].mean(0))
    res.append(lib.chunk_to_doc(0.5*z(b)+0.5*z(dd),cd,ND))
print('chunk-level z fusion bm_log+dpara .5', ev(res).mean(0).round(4))
print('doc-level   z fusion bm_log+dpara .5', ev([0.5*z(a)+0.5*z(b) for a,b in zip(X['bm_log'],X['dpara'])]).mean(0).round(4))
# 3) dpara aggregation sumtop2
dp2=[lib.chunk_to_doc(E@nv(S.mean(0)),cd,ND,'sumtop2') for S in QPs]
print('dpara sumtop2', ev(dp2).mean(0).round(4), 'fused', ev([0.5*z(a)+0.5*z(b) for a,b in zip(X['bm_log'],dp2)]).mean(0).round(4))
# 4) three-way bm_log + dpara + dsoft0.3
for w in [(0.5,0.25,0.25),(0.4,0.3,0.3),(0.5,0.5,0)]:
    print('3way',w, ev([w[0]*z(a)+w[1]*z(b)+w[2]*z(c) for a,b,c in zip(X['bm_log'],X['dpara'],X['dsoft0.3'])]).mean(0).round(4))
# dpara with soft weighting of paragraphs
r=[]
for S in QPs:
    w=np.maximum((S@E.T).max(1)-0.3,0)
    if w.sum()==0: w[:]=1
    r.append(lib.chunk_to_doc(E@nv((S*w[:,None]).sum(0)),cd,ND))
X['dpsoft0.3']=r
print('dpsoft0.3', ev(r).mean(0).round(4), 'fused', ev([0.5*z(a)+0.5*z(b) for a,b in zip(X['bm_log'],r)]).mean(0).round(4))
pickle.dump(X,open('/tmp/rr/cache/comps.pkl','wb'))
