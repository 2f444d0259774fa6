"""The demo help center and its answerable questions in `concierge eval retrieval`'s formats:
a corpus JSONL (id = the article's URL slug, as `article` names it) and a qrels JSONL.

    python3 tools/demo_eval_to_jsonl.py demo /tmp/demo-corpus.jsonl /tmp/demo-qrels.jsonl
"""
import json, os, sys

demo, corpus_out, qrels_out = sys.argv[1:4]
with open(corpus_out, "w") as out:
    for name in sorted(os.listdir(os.path.join(demo, "kb"))):
        text = open(os.path.join(demo, "kb", name)).read()
        meta, body = {}, text
        if text.startswith("---\n"):
            head, body = text[4:].split("\n---\n", 1)
            meta = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
        slug = meta.get("url", name).strip().rstrip("/").rsplit("/", 1)[-1].removesuffix(".md")
        out.write(json.dumps({"id": slug, "title": meta.get("title", slug).strip(), "content": body}) + "\n")
with open(qrels_out, "w") as out:
    for i, line in enumerate(open(os.path.join(demo, "eval", "answerable.jsonl"))):
        q = json.loads(line)
        out.write(json.dumps({"query_id": f"q{i}", "query": q["question"], "relevant_doc_ids": [q["article"]]}) + "\n")
