import os; os.environ['OMP_NUM_THREADS']='1'
import numpy as np, pickle, re, enc, prep
d=pickle.load(open('/tmp/rr/cache/data.pkl','rb')); Q=d['Q']
paras=[]; wins=[]
for q in Q:
    t=prep.query_text(q)
    ps=[prep.clean(p) for p in re.split(r"\n\s*\n", t) if prep.clean(p)]
    paras.append(ps)
    ids=enc.TOK.encode(t, add_special_tokens=False)
    # 128-token windows with stride 64, decoded back via offsets
    offs=ids.offsets; n=len(offs); ws=[]
    for s in range(0, max(n-64,1), 64):
        e=min(s+128,n); ws.append(t[offs[s][0]:offs[e-1][1]])
    wins.append(ws)
fp=[p for ps in paras for p in ps]; fw=[w for ws in wins for w in ws]
print(len(fp), len(fw))
np.save('/tmp/rr/cache/qpara.npy', enc.encode(fp)); np.save('/tmp/rr/cache/qwin.npy', enc.encode(fw))
pickle.dump((paras,wins),open('/tmp/rr/cache/pw.pkl','wb'))
