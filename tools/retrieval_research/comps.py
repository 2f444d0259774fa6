from common import *
def comps():
    out={}
    out['bm']=[lib.chunk_to_doc(bm.score(bm.qvec(qweights(s,bm.idf,0.5))),cd,ND) for s in QS]
    out['bm_a0']=[lib.chunk_to_doc(bm.score(bm.qvec(qweights(s,bm.idf,0.0))),cd,ND) for s in QS]
    out['bmd']=[bmd.score(bmd.qvec(qweights(s,bm.idf,1.0,None,1.0))) for s in QS]
    out['dfull']=[lib.chunk_to_doc(E@q,cd,ND) for q in QF]
    for tau in [0.25,0.3,0.35,0.4,0.45]:
        out[f'ds{tau}']=[lib.chunk_to_doc(np.maximum(S@E.T-tau,0).sum(0),cd,ND) for S in QSENT]
    out['dmean']=[lib.chunk_to_doc(E@(S.mean(0)/np.linalg.norm(S.mean(0))),cd,ND) for S in QSENT]
    return out
if __name__=='__main__':
    pickle.dump(comps(), open('/tmp/rr/cache/comps.pkl','wb'))
