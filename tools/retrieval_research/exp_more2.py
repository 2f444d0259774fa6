from common import *
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
paras,wins,QPs=load_paragraphs()
F=lambda a,b,w=0.5: ev([(1-w)*z(x)+w*z(y) for x,y in zip(a,b)]).mean(0).round(4)
df=bm.df
for mindf in [1,2,3]:
  for cap in [None]:
    res=[]
    for s in QS:
        w={k:1+np.log(v) for k,v in Counter(s).items() if (bm.vocab.get(k) is not None and df[bm.vocab[k]]>=mindf)}
        res.append(lib.chunk_to_doc(bm.score(bm.qvec(w)),cd,ND))
    print('mindf',mindf, ev(res).mean(0).round(4), 'fused', F(res,X['dpara']))
# doc centroid
C_=np.zeros((ND,384)); np.add.at(C_,cd,E); C_/=np.linalg.norm(C_,axis=1,keepdims=True)
cen=[C_@nv(S.mean(0)) for S in QPs]
print('centroid dense', ev(cen).mean(0).round(4), 'fused w/ bm_log', F(X['bm_log'],cen))
mix=[0.5*z(a)+0.5*z(b) for a,b in zip(X['dpara'],cen)]
print('dpara+centroid', ev(mix).mean(0).round(4), 'fused', F(X['bm_log'],mix))
# bmd doc-level with log tf
bmdl=[bmd.score(bmd.qvec({k:1+np.log(v) for k,v in Counter(s).items()})) for s in QS]
print('bmd log', ev(bmdl).mean(0).round(4))
for w in [(0.4,0.1,0.5),(0.3,0.2,0.5),(0.25,0.25,0.5)]:
    print('bm_log+bmd_log+dpara',w, ev([w[0]*z(a)+w[1]*z(b)+w[2]*z(c) for a,b,c in zip(X['bm_log'],bmdl,X['dpara'])]).mean(0).round(4))
X['bmd_log']=bmdl; X['centroid']=cen
pickle.dump(X,open('/tmp/rr/cache/comps.pkl','wb'))
