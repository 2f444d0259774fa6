"""A cross-encoder-shaped checkpoint for benchmarking the plain-Rust BERT (no trained
cross-encoder weights are reachable here): all-MiniLM-L6-v2's encoder under `bert.` plus a
random pooler and classifier. Its scores are meaningless; its cost is that of a real
ms-marco-MiniLM-L-6 cross-encoder (same shape).

    python3 tools/make_test_cross_encoder.py concierge-data/models /tmp/ce
    ./target/release/concierge bench retrieval ... --cross-encoder /tmp/ce
"""
import json, struct, sys, os, shutil, random

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
out = {("bert." + k if k != "__metadata__" else k): v for k, v in header.items()}
rng = random.Random(0)
for name, shape in [("bert.pooler.dense.weight", [384, 384]), ("bert.pooler.dense.bias", [384]),
                    ("classifier.weight", [1, 384]), ("classifier.bias", [1])]:
    count = 1
    for d in shape:
        count *= d
    start = len(data)
    data += struct.pack("<%df" % count, *[rng.uniform(-0.05, 0.05) for _ in range(count)])
    out[name] = {"dtype": "F32", "shape": shape, "data_offsets": [start, len(data)]}
h = json.dumps(out).encode()
with open(os.path.join(dst, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
json.dump({"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
           "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
           "layer_norm_eps": 1e-12, "hidden_act": "gelu"}, open(os.path.join(dst, "config.json"), "w"))
shutil.copy(os.path.join(src, "tokenizer.json"), os.path.join(dst, "tokenizer.json"))
print("wrote", dst)
