# The Python peer for `concierge bench retrieval`: sentence-transformers embedding the same texts
# with the same model, batch 32, on CPU. Prints one JSON line.
import json, os, statistics, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from sentence_transformers import SentenceTransformer

model_dir, texts_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
texts = [l.rstrip("\n") for l in open(texts_file, encoding="utf-8") if l.strip()]
m = SentenceTransformer(model_dir, device="cpu")
m.max_seq_length = 256
m.encode(texts[:32], batch_size=32)
rates = []
for _ in range(3):
    t = time.perf_counter()
    m.encode(texts, batch_size=32, normalize_embeddings=True)
    rates.append(len(texts) / (time.perf_counter() - t))
import resource
print(json.dumps({"chunks_per_second": statistics.median(rates), "runs": rates,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch": torch.__version__, "threads": threads}))
