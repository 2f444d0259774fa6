from common import *
paras,wins,QPs=load_paragraphs()
def zN(s,N):
    s=np.asarray(s,float)
    if N is None: return (s-s.mean())/(s.std()+1e-9)
    top=np.argsort(-s)[:N]; t=s[top]; mu,sd=t.mean(),t.std()+1e-9
    out=np.full(len(s),(t.min()-mu)/sd); out[top]=(t-mu)/sd; return out
bdoc=[lib.chunk_to_doc(bm.score(bm.qvec({k:1+np.log(v) for k,v in Counter(s).items()})),cd,ND) for s in QS]
ddoc=[]
for U in QPs:
    q=nv(U.mean(0)); s=E@q; top=np.argsort(-s)[:5]; q=nv(q+E[top].mean(0)); ddoc.append(lib.chunk_to_doc(E@q,cd,ND))
for N in [None,50,100,200]:
    print('z over top',N, ev([0.5*zN(a,N)+0.5*zN(b,N) for a,b in zip(bdoc,ddoc)]).mean(0).round(4))
# chunk-level top-N for BM25 in chunks: candidates = top-200 chunks per list
def zall(s): s=np.asarray(s,float); return (s-s.mean())/(s.std()+1e-9)
for N in [100,200,400]:
    res=[]
    for a,b in zip(bdoc,ddoc):
        a2=np.zeros(ND); top=np.argsort(-a)[:N]; a2[top]=a[top]
        res.append(0.5*zall(a2)+0.5*zall(b))
    print('bm top',N,'rest=0, z over all docs', ev(res).mean(0).round(4))
print('frac docs with bm>0', np.mean([ (a>0).mean() for a in bdoc]).round(3))
