"""Chunk corpus like the Rust chunker (chunk.rs), embed chunks and query variants; cache to /tmp/rr/cache."""
import json, re, os, sys, pickle, time
import numpy as np
from markdown_it import MarkdownIt

MAXC = 1200
CORPUS = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/tau2_bench/derived/banking_knowledge_corpus.jsonl"
QRELS = sys.argv[2] if len(sys.argv) > 2 else "/work/shared/datasets/tau2_bench/derived/banking_knowledge_qrels.jsonl"
OUT = "/tmp/rr/cache"; os.makedirs(OUT, exist_ok=True)

def clean(s): return " ".join(s.split())

ABBR = {"e.g.", "i.e.", "etc.", "vs.", "approx.", "no.", "mr.", "ms.", "dr.", "st."}
def sentences(p):
    # approximation of text.rs sentences(): split after .!? followed by space + (uppercase/digit/quote)
    out, start, inq = [], 0, False
    i = 0
    while i < len(p):
        c = p[i]
        if c in '"“”':
            inq = True if c == '“' else False if c == '”' else not inq
        term = c in '.!?' or (c in '"”' and i > 0 and p[i - 1] in '.!?')
        if not inq and term and i + 2 < len(p) and p[i + 1] == ' ':
            nxt = p[i + 2]
            cand = p[start:i + 1]
            lw = (cand.split() or [""])[-1].lower()
            if lw not in ABBR and (nxt.isupper() or nxt.isdigit() or nxt in '"“(['):
                s = cand.strip()
                if s: out.append(s)
                start = i + 2
        i += 1
    s = p[start:].strip()
    if s: out.append(s)
    return out

md = MarkdownIt("commonmark").enable("table")

def inline_text(tok):
    if tok.children is None: return tok.content
    parts = []
    for c in tok.children:
        if c.type in ("text", "code_inline"): parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"): parts.append(" ")
    return "".join(parts)

def blocks(markdown):
    toks = md.parse(markdown)
    out, path = [], []
    lists, list_lines = [], []
    item_text = []
    rows, row = [], []
    i = 0
    heading = None
    while i < len(toks):
        t = toks[i]
        if t.type == "heading_open":
            lvl = int(t.tag[1]) - 1
            title = clean(inline_text(toks[i + 1]))
            path = [(l, s) for l, s in path if l < lvl]
            if title: path.append((lvl, title))
            i += 3; continue
        cp = [s for _, s in path]
        if t.type in ("bullet_list_open", "ordered_list_open"):
            if lists and item_text:
                flush(item_text, lists, list_lines)
            start = int(t.attrs.get("start", 1)) if t.type == "ordered_list_open" else None
            lists.append(start)
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists and list_lines:
                out.append((cp, "\n".join(list_lines))); list_lines = []
        elif t.type == "list_item_open":
            item_text = []
        elif t.type == "list_item_close":
            flush(item_text, lists, list_lines)
        elif t.type == "inline":
            txt = inline_text(t)
            if lists: item_text.append(txt)
            elif toks[i - 1].type == "paragraph_open":
                c = clean(txt)
                if c: out.append((cp, c))
            elif toks[i - 1].type in ("th_open", "td_open"):
                row.append(clean(txt))
        elif t.type == "tr_close":
            rows.append(row); row = []
        elif t.type == "table_open":
            rows = []
        elif t.type == "table_close":
            if rows:
                hdr, body = rows[0], rows[1:]
                lines = []
                for r in body:
                    cells = [f"{hdr[k]}: {c}" if k < len(hdr) and hdr[k] else c for k, c in enumerate(r)]
                    lines.append("- " + "; ".join(cells))
                if lines: out.append((cp, "\n".join(lines)))
        elif t.type in ("fence", "code_block"):
            c = t.content.rstrip()
            if c: out.append((cp, c))
        i += 1
    return out

def flush(item_text, lists, lines):
    text = clean(" ".join(item_text)); item_text.clear()
    if not text: return
    if lists and lists[-1] is not None:
        m = f"{lists[-1]}."; lists[-1] += 1
    else: m = "-"
    lines.append(f"{m} {text}")

def split_long(text):
    if len(text) <= MAXC: return [text]
    parts = text.split("\n") if "\n" in text else sentences(text)
    sep = "\n" if "\n" in text else " "
    pieces, cur = [], ""
    for p in parts:
        if cur and len(cur) + 1 + len(p) > MAXC:
            pieces.append(cur); cur = ""
        cur = cur + sep + p if cur else p
    if cur: pieces.append(cur)
    return pieces

def chunk_markdown(m):
    out, cur = [], None
    for hp, text in blocks(m):
        for piece in split_long(text):
            if cur is not None and cur[0] == hp and len(cur[1]) + 2 + len(piece) <= MAXC:
                cur = (hp, cur[1] + "\n\n" + piece)
            else:
                if cur is not None: out.append(cur)
                cur = (hp, piece)
    if cur is not None: out.append(cur)
    return out

def emb_text(title, hp, text):
    s = title
    for h in hp:
        if h != title: s += " > " + h
    return s + "\n" + text

def query_text(q):
    return q.get("query") or q.get("query_scenario") or q.get("text")

if __name__ == "__main__":
    import enc
    D = [json.loads(l) for l in open(CORPUS)]
    Q = [json.loads(l) for l in open(QRELS)]
    chunks = []  # dict(doc, title, hp, text)
    for di, d in enumerate(D):
        cs = chunk_markdown(d["content"]) or [([], d["content"][:MAXC])]
        for hp, text in cs:
            chunks.append(dict(doc=di, title=d["title"], hp=hp, text=text))
    print("chunks", len(chunks))
    # query units: sentences (paragraph-split then sentence-split)
    qunits = []
    for q in Q:
        qt = query_text(q)
        sents = []
        for para in re.split(r"\n\s*\n|\n", qt):
            para = clean(para)
            if para: sents.extend(sentences(para))
        qunits.append(sents)
    pickle.dump(dict(D=D, Q=Q, chunks=chunks, qunits=qunits), open(OUT + "/data.pkl", "wb"))
    t = time.time()
    if not os.path.exists(OUT + "/qfull.npy"):
        np.save(OUT + "/qfull.npy", enc.encode([query_text(q) for q in Q]))
    flat = [s for ss in qunits for s in ss]
    if not os.path.exists(OUT + "/qsent.npy"):
        np.save(OUT + "/qsent.npy", enc.encode(flat, bs=32))
    print("queries", time.time() - t, len(flat))
    # chunk sentences for sentence-level matching later
    if not os.path.exists(OUT + "/chunks.npy"):
        E = enc.encode([emb_text(c["title"], c["hp"], c["text"]) for c in chunks], bs=16)
        np.save(OUT + "/chunks.npy", E)
    print("chunks emb", time.time() - t)
