from common import *
paras,wins=pickle.load(open('/tmp/rr/cache/pw.pkl','rb'))
QP=np.load('/tmp/rr/cache/qpara.npy'); QW=np.load('/tmp/rr/cache/qwin.npy')
def split(A,lst):
    o=np.cumsum([0]+[len(x) for x in lst]); return [A[o[i]:o[i+1]] for i in range(len(lst))]
QPs=split(QP,paras); QWs=split(QW,wins)
bdoc=[lib.chunk_to_doc(bm.score(bm.qvec({k:1+np.log(v) for k,v in Counter(s).items()})),cd,ND) for s in QS]
def dd(U,k=5,beta=1.0):
    out=[]
    for u in U:
        q=nv(u.mean(0)); s=E@q
        if k: top=np.argsort(-s)[:k]; q=nv(q+beta*E[top].mean(0)); s=E@q
        out.append(lib.chunk_to_doc(s,cd,ND))
    return out
R={}
for name,U in [('para',QPs),('sent',QSENT),('win128',QWs),('full',[q[None] for q in QF])]:
    d=dd(U); R[name]=ev([0.5*z(a)+0.5*z(b) for a,b in zip(bdoc,d)])
    print(name,'calls/query %.1f'%np.mean([len(u) for u in U]),'dense+PRF alone',ev(d).mean(0).round(4),'fused .5',R[name].mean(0).round(4))
bm1=ev([lib.chunk_to_doc(bm.score(bm.qvec({k:1.0 for k in set(s)})),cd,ND) for s in QS])
rng=np.random.default_rng(0); A=R['para'][:,0]
for nm,B in [('bm25 baseline',bm1[:,0])]:
    diffs=[(A[i]-B[i]).mean() for i in [rng.integers(0,len(A),len(A)) for _ in range(5000)]]
    print('A -',nm,'mean diff %.4f, 95%% bootstrap CI [%.4f, %.4f]'%(np.mean(A-B),*np.percentile(diffs,[2.5,97.5])))
print('per-query std of nDCG (recipe A) %.3f -> SE %.3f'%(A.std(), A.std()/np.sqrt(len(A))))
