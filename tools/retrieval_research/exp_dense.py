from common import *
per={}
def rrf_rank(s, k=60):
    r = np.empty(len(s)); r[np.argsort(-s, kind='stable')] = np.arange(1,len(s)+1); return 1/(k+r)
res=[lib.chunk_to_doc(E@q,cd,ND) for q in QF]; per['full']=ev(res); print('full max', per['full'].mean(0).round(4))
for agg in ['sumtop2','sumtop3']:
    print('full',agg, ev([lib.chunk_to_doc(E@q,cd,ND,agg) for q in QF]).mean(0).round(4))
# mean of sentence embeddings
res=[]
for S in QSENT:
    q=S.mean(0); q/=np.linalg.norm(q); res.append(lib.chunk_to_doc(E@q,cd,ND))
per['meanvec']=ev(res); print('meanvec', per['meanvec'].mean(0).round(4))
# sentence-level
for name,fn in [('max',lambda M: M.max(0)),('mean',lambda M:M.mean(0)),
                ('top2',lambda M: np.sort(M,0)[-2:].sum(0)),('top3',lambda M: np.sort(M,0)[-3:].sum(0)),
                ('top5',lambda M: np.sort(M,0)[-5:].sum(0)),
                ('lse10',lambda M: np.log(np.exp(10*M).sum(0))),('lse20',lambda M: np.log(np.exp(20*M).sum(0))),
                ('relu0.3',lambda M: np.maximum(M-0.3,0).sum(0)),('relu0.4',lambda M: np.maximum(M-0.4,0).sum(0)),('relu0.5',lambda M: np.maximum(M-0.5,0).sum(0))]:
    res=[lib.chunk_to_doc(fn(S@E.T),cd,ND) for S in QSENT]
    per['sent_'+name]=ev(res); print('sent',name, per['sent_'+name].mean(0).round(4))
# per-sentence doc ranking, RRF / sum of doc maxes
for name in ['rrf','docsum','docrelu0.4']:
    res=[]
    for S in QSENT:
        M=S@E.T; Dm=np.array([lib.chunk_to_doc(m,cd,ND) for m in M])
        if name=='rrf': res.append(sum(rrf_rank(x,60) for x in Dm))
        elif name=='docsum': res.append(Dm.sum(0))
        else: res.append(np.maximum(Dm-0.4,0).sum(0))
    per['sentdoc_'+name]=ev(res); print('sentdoc',name, per['sentdoc_'+name].mean(0).round(4))
# sentence weighting by informativeness: max sim to corpus
for tau in [0.3,0.4,0.5]:
    res=[]
    for S in QSENT:
        M=S@E.T; w=(M.max(1)>tau).astype(float)
        if w.sum()==0: w[:]=1
        q=(S*w[:,None]).sum(0); q/=np.linalg.norm(q); res.append(lib.chunk_to_doc(E@q,cd,ND))
    per[f'filtmean{tau}']=ev(res); print('filtered meanvec',tau, per[f'filtmean{tau}'].mean(0).round(4))
pickle.dump(per, open('/tmp/rr/cache/per_dense.pkl','wb'))
