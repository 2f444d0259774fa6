from common import *
import itertools
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
NORM={'z':z,'mm':mm,'rrf':rrfs}
per={}
for a,b in [('bm','dfull'),('bm_a0','dfull'),('bm','ds0.3'),('bm','ds0.35'),('bm','ds0.4'),('bm','dmean'),('bmd','ds0.35'),('bm','ds0.25')]:
  for nm,f in NORM.items():
    for w in np.arange(0,1.01,0.1):
      res=[(1-w)*f(x)+w*f(y) for x,y in zip(X[a],X[b])]
      per[(a,b,nm,round(w,1))]=ev(res)
rows=sorted(per.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:20]: print(k, v.mean(0).round(4))
for k in [('bm_a0','dfull','rrf',0.5),('bm_a0','dfull','z',0.5)]: print(k, per[k].mean(0).round(4))
for pair in [('bm','dfull'),('bm','ds0.35'),('bm','dmean')]:
  for nm in NORM:
    sub={k:v for k,v in per.items() if k[:3]==pair+(nm,)}
    print('CV',pair,nm,cv_select(sub)[0].round(4))
sub={k:v for k,v in per.items()}; print('CV all', cv_select(sub))
# 3-way
per3={}
for c in ['ds0.3','ds0.35','ds0.4']:
  for nm in ['z','mm']:
    f=NORM[nm]
    for w1 in np.arange(0,0.81,0.1):
      for w2 in np.arange(0,0.81-w1+1e-9,0.1):
        res=[(1-w1-w2)*f(x)+w1*f(y)+w2*f(u) for x,y,u in zip(X['bm'],X[c],X['dfull'])]
        per3[('bm',c,'dfull',nm,round(w1,1),round(w2,1))]=ev(res)
rows=sorted(per3.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:10]: print(k, v.mean(0).round(4))
print('CV 3way', cv_select(per3))
pickle.dump((per,per3), open('/tmp/rr/cache/per_fuse.pkl','wb'))
