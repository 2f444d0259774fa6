from common import *
from sklearn.linear_model import LogisticRegression
import sys
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
def rank_of(s):
    r=np.empty(len(s)); r[np.argsort(-s,kind='stable')]=np.arange(1,len(s)+1); return r
# doc-level stem sets
title_st=[set(lib.analyze(x['title']))-set(lib.STOP) for x in D]
doc_st=[set(lib.analyze(x['title']+' '+x['content'])) for x in D]
idf=bm.idf; voc=bm.vocab
def gi(s): j=voc.get(s); return idf[j] if j is not None else 0.0
# sentence-doc matrix features
sentdoc=[]
for S in QSENT:
    M=S@E.T; Dm=np.array([lib.chunk_to_doc(m,cd,ND) for m in M]); sentdoc.append(Dm)
FEATS=['bm_z','bm_mm','bm_invlogrank','bmd_z','bm_a0_z','dfull','dfull_z','dmean','dmean_z','ds_z','ds_log','sd_max','sd_relu','title_cov','qcov_idf','fuse_mm']
def feats(qi):
    bmz=z(X['bm'][qi]); f={}
    f['bm_z']=bmz; f['bm_mm']=mm(X['bm'][qi]); f['bm_invlogrank']=1/np.log2(rank_of(X['bm'][qi])+1)
    f['bmd_z']=z(X['bmd'][qi]); f['bm_a0_z']=z(X['bm_a0'][qi])
    f['dfull']=X['dfull'][qi]; f['dfull_z']=z(X['dfull'][qi]); f['dmean']=X['dmean'][qi]; f['dmean_z']=z(X['dmean'][qi])
    f['ds_z']=z(X['ds0.35'][qi]); f['ds_log']=np.log1p(X['ds0.35'][qi])
    Dm=sentdoc[qi]; f['sd_max']=Dm.max(0); f['sd_relu']=np.maximum(Dm-0.4,0).sum(0)
    qs=set(QS[qi]); qidf=sum(gi(s) for s in qs)
    f['title_cov']=np.array([len(t&qs)/max(len(t),1) for t in title_st])
    f['qcov_idf']=np.array([sum(gi(s) for s in (qs&ds))/qidf for ds in doc_st])
    f['fuse_mm']=0.7*mm(X['bm'][qi])+0.3*mm(X['dmean'][qi])
    return np.stack([f[k] for k in FEATS],1)
CAND=100
F=[];Y=[];CANDS=[]
for qi in range(len(Q)):
    fm=feats(qi)
    fuse=fm[:,FEATS.index('fuse_mm')]
    cand=np.argsort(-fuse)[:CAND]  # candidate set from the fused first stage
    CANDS.append(cand); F.append(fm[cand]); Y.append(np.array([d in rels[qi] for d in cand],int))
pickle.dump((FEATS,F,Y,CANDS),open('/tmp/rr/cache/ltr.pkl','wb'))
def run(sel, C=1.0, reps=5, k=5, seed=0):
    nq=len(Q); rng=np.random.default_rng(seed); outs=[]
    for r in range(reps):
        perm=rng.permutation(nq); test=np.zeros((nq,3))
        for fold in np.array_split(perm,k):
            tr=np.setdiff1d(perm,fold)
            Xt=np.concatenate([F[i][:,sel] for i in tr]); yt=np.concatenate([Y[i] for i in tr])
            mu,sd=Xt.mean(0),Xt.std(0)+1e-9
            m=LogisticRegression(C=C,max_iter=2000).fit((Xt-mu)/sd,yt)
            for i in fold:
                s=m.decision_function((F[i][:,sel]-mu)/sd)
                full=np.full(ND,-1e9); full[CANDS[i]]=s
                test[i]=lib.evaluate([full],[rels[i]])[0]
        outs.append(test.mean(0))
    return np.mean(outs,0)
allsel=list(range(len(FEATS)))
print('first stage fuse', ev([np.where(np.isin(np.arange(ND),c), 0,0)+0 for c in []] or [0]) if False else '')
fs=[]
for i in range(len(Q)):
    full=np.full(ND,-1e9); full[CANDS[i]]=F[i][:,FEATS.index('fuse_mm')]; fs.append(full)
print('fuse_mm first stage (fixed w=0.3)', ev(fs).mean(0).round(4))
print('recall@100 of candidates', np.mean([Y[i].sum()/len(rels[i]) for i in range(len(Q))]).round(3))
for C in [0.01,0.1,1.0]:
    print('LR all feats C',C, run(allsel,C).round(4))
for name,sel in [('bm_z+dmean_z',['bm_z','dmean_z']),('bm_z+dmean_z+ds_z',['bm_z','dmean_z','ds_z']),
                 ('+title+qcov',['bm_z','dmean_z','ds_z','title_cov','qcov_idf']),
                 ('+sd',['bm_z','dmean_z','ds_z','title_cov','qcov_idf','sd_max','sd_relu']),
                 ('+bmd',['bm_z','dmean_z','ds_z','title_cov','qcov_idf','sd_max','sd_relu','bmd_z','dfull_z'])]:
    s=[FEATS.index(x) for x in sel]
    print('LR',name, run(s,0.1).round(4), run(s,1.0).round(4))
