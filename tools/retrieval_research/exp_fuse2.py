from common import *
X=pickle.load(open('/tmp/rr/cache/comps.pkl','rb'))
NORM={'z':z,'mm':mm,'rrf':rrfs}
per={}
BMS=['bm_a0','bm_a0.3','bm','bm_log']; DNS=['dfull','dmean','dpara','dfilt0.4','dsoft0.3','ds0.35']
for a in BMS:
  for b in DNS:
    for nm,f in NORM.items():
      fa=[f(x) for x in X[a]]; fb=[f(y) for y in X[b]]
      for w in np.arange(0,1.01,0.1):
        per[(a,b,nm,round(w,1))]=ev([(1-w)*x+w*y for x,y in zip(fa,fb)])
rows=sorted(per.items(), key=lambda x:-x[1][:,0].mean())
for k,v in rows[:15]: print(k, v.mean(0).round(4))
print('NESTED CV whole family', cv_select(per,n_rep=20))
for b in DNS:
    sub={k:v for k,v in per.items() if k[1]==b}; print('CV dense fixed',b, cv_select(sub,n_rep=20)[0].round(4))
for a in BMS:
  for b in ['dpara','dmean','dfull']:
    for nm in NORM:
      sub={k:v for k,v in per.items() if k[:3]==(a,b,nm)}; r=cv_select(sub,n_rep=20); print('CV',a,b,nm, r[0].round(4), r[1][0])
pickle.dump(per,open('/tmp/rr/cache/per_fuse2.pkl','wb'))
