from common import *
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
paras,wins,QPs=load_paragraphs()
per={}
for src in ['dense','fused']:
  for k in [3,5,10]:
    for beta in [0.3,0.5,1.0]:
      res=[];fres=[]
      for qi,S in enumerate(QPs):
        q=nv(S.mean(0)); cs=E@q
        if src=='dense': top=np.argsort(-cs)[:k]
        else:
            fc=0.5*z(bm.score(bm.qvec({a:1+np.log(v) for a,v in Counter(QS[qi]).items()})))+0.5*z(cs)
            top=np.argsort(-fc)[:k]
        q2=nv(q+beta*E[top].mean(0)); d=lib.chunk_to_doc(E@q2,cd,ND); res.append(d)
        fres.append(0.5*z(X['bm_log'][qi])+0.5*z(d))
      per[(src,k,beta)]=ev(fres)
      print(src,k,beta,'dense',ev(res).mean(0).round(4),'fused',per[(src,k,beta)].mean(0).round(4))
print('CV', cv_select(per,n_rep=20))
