from common import *
paras,wins=pickle.load(open('/tmp/rr/cache/pw.pkl','rb'))
QP=np.load('/tmp/rr/cache/qpara.npy'); QW=np.load('/tmp/rr/cache/qwin.npy')
def split(A,lst):
    o=np.cumsum([0]+[len(x) for x in lst]); return [A[o[i]:o[i+1]] for i in range(len(lst))]
QPs=split(QP,paras); QWs=split(QW,wins)
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
X['dpara']=[lib.chunk_to_doc(E@nv(S.mean(0)),cd,ND) for S in QPs]
X['dwin']=[lib.chunk_to_doc(E@nv(S.mean(0)),cd,ND) for S in QWs]
for tau in [0.35,0.4,0.45]:
    r=[]
    for S in QSENT:
        w=((S@E.T).max(1)>tau).astype(float)
        if w.sum()==0: w[:]=1
        r.append(lib.chunk_to_doc(E@nv((S*w[:,None]).sum(0)),cd,ND))
    X[f'dfilt{tau}']=r
# soft weighting: weight = max sim to corpus
r=[]
for S in QSENT:
    w=(S@E.T).max(1); r.append(lib.chunk_to_doc(E@nv((S*w[:,None]).sum(0)),cd,ND))
X['dsoft']=r
r=[]
for S in QSENT:
    w=np.maximum((S@E.T).max(1)-0.3,0); 
    if w.sum()==0: w[:]=1
    r.append(lib.chunk_to_doc(E@nv((S*w[:,None]).sum(0)),cd,ND))
X['dsoft0.3']=r
X['bm_a0.3']=[lib.chunk_to_doc(bm.score(bm.qvec(qweights(s,bm.idf,0.3))),cd,ND) for s in QS]
X['bm_a0.7']=[lib.chunk_to_doc(bm.score(bm.qvec(qweights(s,bm.idf,0.7))),cd,ND) for s in QS]
X['bm_a1']=[lib.chunk_to_doc(bm.score(bm.qvec(qweights(s,bm.idf,1.0))),cd,ND) for s in QS]
X['bm_log']=[lib.chunk_to_doc(bm.score(bm.qvec({k:1+np.log(v) for k,v in Counter(s).items()})),cd,ND) for s in QS]
for k in ['dfull','dmean','dpara','dwin','dfilt0.35','dfilt0.4','dfilt0.45','dsoft','dsoft0.3','bm_a0','bm_a0.3','bm','bm_a0.7','bm_a1','bm_log']:
    print(k, ev(X[k]).mean(0).round(4))
pickle.dump(X,open('/tmp/rr/cache/comps.pkl','wb'))
