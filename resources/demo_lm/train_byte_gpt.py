#!/usr/bin/python3
"""Build QuantStudio's bundled demo language model: a byte-level GPT-style decoder.

Role: the single, reproducible source of every byte_gpt* file in resources/demo/. It

  * reads the Jargon File 4.4.7 (public domain) from Debian's `jargon-text` package
    (/usr/share/doc/jargon-text/jargon.txt.gz), drops its front matter and table of
    contents, and holds out one contiguous slice as validation text,
  * trains a 3-layer pre-LayerNorm decoder (d_model 128, 4 heads, context 128,
    vocab = the 256 byte values) on the rest, single-threaded on the CPU,
  * exports it to ONNX opset 17 with dynamic batch and sequence axes: nn.LayerNorm ->
    LayerNormalization, tanh-GELU -> Tanh/Pow/Mul, causal mask from Trilu + Where,
    learned positions from Range + Gather,
  * exports a tiny second model (random weights, 1 layer, d_model 32) that spells the
    same decoder the other common way: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div,
    erf-GELU, a -inf mask, opset 14, so runtime tests cover both patterns,
  * exports torch's own nn.TransformerEncoder (2 pre-norm layers, d_model 32, erf-GELU,
    random weights, opset 17: Gemm in-projection, Slice, an additive -inf Trilu mask),
    the attention pattern torch.nn.MultiheadAttention exports,
  * writes the validation slice, the torch perplexity on it (metadata_props and
    byte_gpt_ref.json) and torch reference logits for a few windows of each model.

Perplexity convention (the same as `quantstudio-cli run --data text:FILE --context N`):
the file's bytes are cut into non-overlapping windows; window k feeds bytes
[kN, kN+N) and is scored on the next bytes [kN+1, kN+N+1), so every byte after the first
is predicted once and the trailing (len-1) mod N bytes are dropped.
perplexity = exp(mean next-byte negative log-likelihood).

Run with Debian's interpreter (python3-torch 1.13, python3-onnx, python3-numpy), after
`apt-get install jargon-text`:

    /usr/bin/python3 resources/demo_lm/train_byte_gpt.py [--steps N] [--max-seconds S]
    /usr/bin/python3 resources/demo_lm/train_byte_gpt.py --twins-only   # only the random-weight test models
"""

import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

SOURCE = "/usr/share/doc/jargon-text/jargon.txt.gz"
SOURCE_NAME = "The Jargon File 4.4.7 (public domain), Debian package jargon-text"
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo")
ONNX_PATH = os.path.join(OUT_DIR, "byte_gpt.onnx")
VAL_PATH = os.path.join(OUT_DIR, "byte_gpt_val.txt")
REF_JSON = os.path.join(OUT_DIR, "byte_gpt_ref.json")
REF_TOKENS = os.path.join(OUT_DIR, "byte_gpt_ref_tokens.npy")
REF_LOGITS = os.path.join(OUT_DIR, "byte_gpt_ref_logits.npy")
TINY_ONNX = os.path.join(OUT_DIR, "byte_gpt_tiny_decomposed.onnx")
TINY_TOKENS = os.path.join(OUT_DIR, "byte_gpt_tiny_ref_tokens.npy")
TINY_LOGITS = os.path.join(OUT_DIR, "byte_gpt_tiny_ref_logits.npy")
ENCODER_ONNX = os.path.join(OUT_DIR, "byte_gpt_torch_encoder.onnx")
ENCODER_TOKENS = os.path.join(OUT_DIR, "byte_gpt_torch_encoder_tokens.npy")
ENCODER_LOGITS = os.path.join(OUT_DIR, "byte_gpt_torch_encoder_logits.npy")

SEED = 0
LAYERS, D_MODEL, HEADS, CONTEXT, VOCAB = 3, 128, 4, 128, 256
BATCH = 16
LR = 3e-3
WEIGHT_DECAY = 0.05
VAL_BYTES = 24577  # 192 windows of 128 (+1 target byte)
VAL_START_FRACTION = 0.5  # the held-out slice sits in the middle of the glossary
EVAL_CONTEXTS = (128, 64)
REF_WINDOWS, REF_WINDOW_LEN = 3, 64
MASK_FILL = -1e4  # finite: exp(-1e4 - max) is exactly 0 in float32, and every tensor stays finite
OPSET = 17


# --------------------------------------------------------------------------- data
def load_corpus():
    with gzip.open(SOURCE, "rb") as f:
        raw = f.read()
    # Keep the prose: chapters 1-12 and the glossary entries. Drop the front matter, the
    # contents listing and the glossary's index of headwords (one word per line).
    # The chapter headings use non-breaking spaces (UTF-8 c2 a0).
    start = raw.index(b"Chapter\xc2\xa01.\xc2\xa0Hacker Slang")
    index = raw.index(b"\nGlossary\n", start)
    entries = raw.index(b"   :(TM):", index)
    return raw[start:index + 1] + raw[entries:]


def split_corpus(data):
    v0 = int(len(data) * VAL_START_FRACTION)
    v0 = data.index(b"\n\n", v0) + 2  # begin on a paragraph boundary
    val = data[v0:v0 + VAL_BYTES]
    train = data[:v0] + data[v0 + VAL_BYTES:]
    return train, val


def windows(data, n):
    """Non-overlapping windows: inputs [kN, kN+N), targets [kN+1, kN+N+1)."""
    count = (len(data) - 1) // n
    arr = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    x = np.stack([arr[k * n:k * n + n] for k in range(count)])
    y = np.stack([arr[k * n + 1:k * n + n + 1] for k in range(count)])
    return torch.from_numpy(x), torch.from_numpy(y)


# --------------------------------------------------------------------------- model
class DecomposedLayerNorm(nn.Module):
    """LayerNorm written out, so the export has ReduceMean/Sub/Pow/Sqrt/Div."""

    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


class Block(nn.Module):
    def __init__(self, d, heads, decomposed):
        super().__init__()
        norm = (lambda: DecomposedLayerNorm(d)) if decomposed else (lambda: nn.LayerNorm(d))
        self.ln1, self.ln2 = norm(), norm()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.heads = heads
        self.gelu = nn.GELU() if decomposed else nn.GELU(approximate="tanh")
        self.mask_fill = float("-inf") if decomposed else MASK_FILL

    def attention(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        hd = c // self.heads
        q = q.reshape(b, t, self.heads, hd).transpose(1, 2)
        k = k.reshape(b, t, self.heads, hd).transpose(1, 2)
        v = v.reshape(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=x.device))
        att = att.masked_fill(~causal, self.mask_fill)
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


class ByteGPT(nn.Module):
    def __init__(self, layers, d, heads, context, decomposed=False):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, d)
        self.wpe = nn.Embedding(context, d)
        self.blocks = nn.ModuleList([Block(d, heads, decomposed) for _ in range(layers)])
        self.lnf = DecomposedLayerNorm(d) if decomposed else nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, tokens):
        t = tokens.shape[1]
        pos = torch.arange(t, device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.lnf(x))


class TorchEncoderLM(nn.Module):
    """Byte LM on torch.nn.TransformerEncoder: the stock MultiheadAttention export."""

    def __init__(self, d=32, heads=4, layers=2):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, d)
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, activation="gelu",
                                           norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, tokens):
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        return self.head(self.enc(self.emb(tokens), mask=mask))


# --------------------------------------------------------------------------- train / eval
def perplexity(model, data, n):
    x, y = windows(data, n)
    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 32):
            logits = model(x[i:i + 32]).double()
            nll += F.cross_entropy(logits.reshape(-1, VOCAB), y[i:i + 32].reshape(-1),
                                   reduction="sum").item()
            count += y[i:i + 32].numel()
    return math.exp(nll / count), count


def train(model, train_data, steps, max_seconds):
    """AdamW with warmup and a cosine decay over max(step/steps, elapsed/max_seconds), so a
    slow (shared) machine ends on time with a fully decayed rate; returns (steps, seconds)."""
    gen = torch.Generator().manual_seed(SEED)
    arr = torch.from_numpy(np.frombuffer(train_data, dtype=np.uint8).astype(np.int64))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR,
                            betas=(0.9, 0.95))
    warmup = min(30, max(1, steps // 10))
    t0 = time.time()
    model.train()
    step = 0
    while True:
        progress = step / steps
        if max_seconds > 0:
            progress = max(progress, (time.time() - t0) / max_seconds)
        if progress >= 1.0:
            break
        lr = LR * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, len(arr) - CONTEXT - 1, (BATCH,), generator=gen)
        x = torch.stack([arr[i:i + CONTEXT] for i in idx])
        y = torch.stack([arr[i + 1:i + CONTEXT + 1] for i in idx])
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            print(f"step {step:5d} progress {progress:.3f} lr {lr:.2e} loss {loss.item():.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
        step += 1
    model.eval()
    return step, time.time() - t0


def export(model, path, opset, example):
    torch.onnx.export(model, (example,), path, opset_version=opset,
                      input_names=["tokens"], output_names=["logits"],
                      dynamic_axes={"tokens": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}},
                      do_constant_folding=True)


def set_metadata(path, props):
    m = onnx.load(path)
    del m.metadata_props[:]
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, str(v)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def reference_windows(data, count, length, stride):
    arr = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    return torch.from_numpy(np.stack([arr[i * stride:i * stride + length] for i in range(count)]))


def export_twins(val):
    """Random-weight test models spelling the decoder other ways, with torch logits."""
    # The tiny decomposed variant: random weights are enough to compare runtimes.
    torch.manual_seed(SEED + 1)
    tiny = ByteGPT(1, 32, 2, 32, decomposed=True).eval()
    for p in tiny.parameters():  # larger than the 0.02 init, so the logits are not all ~0
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.2)
    export(tiny, TINY_ONNX, 14, torch.zeros(1, 32, dtype=torch.int64))
    set_metadata(TINY_ONNX, {"quantstudio.task": "language-model",
                             "quantstudio.tokenizer": "bytes",
                             "quantstudio.note": "random weights, runtime test only"})
    tiny_tokens = reference_windows(val, 2, 24, 500)
    with torch.no_grad():
        np.save(TINY_TOKENS, tiny_tokens.numpy())
        np.save(TINY_LOGITS, tiny(tiny_tokens).numpy().astype(np.float32))
    torch.manual_seed(SEED + 2)
    enc = TorchEncoderLM().eval()
    export(enc, ENCODER_ONNX, OPSET, torch.zeros(1, 16, dtype=torch.int64))
    set_metadata(ENCODER_ONNX, {"quantstudio.task": "language-model",
                                "quantstudio.tokenizer": "bytes",
                                "quantstudio.note": "random weights, runtime test only"})
    enc_tokens = reference_windows(val, 2, 20, 700)
    with torch.no_grad():
        np.save(ENCODER_TOKENS, enc_tokens.numpy())
        np.save(ENCODER_LOGITS, enc(enc_tokens).numpy().astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--max-seconds", type=float, default=660,
                    help="wall-clock training budget; 0 = run all --steps (bit-reproducible)")
    ap.add_argument("--weights", help="skip training: load this state_dict")
    ap.add_argument("--twins-only", action="store_true",
                    help="only (re)write the random-weight test models and their logits")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)

    corpus = load_corpus()
    train_data, val = split_corpus(corpus)
    if args.twins_only:
        export_twins(val)
        return
    print(f"corpus {len(corpus)} bytes: train {len(train_data)}, val {len(val)}")
    with open(VAL_PATH, "wb") as f:
        f.write(val)

    model = ByteGPT(LAYERS, D_MODEL, HEADS, CONTEXT)
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
    if args.weights:
        model.load_state_dict(torch.load(args.weights))
        model.eval()
        steps, seconds = args.steps, 0.0
    else:
        steps, seconds = train(model, train_data, args.steps, args.max_seconds)
        torch.save(model.state_dict(), "/tmp/byte_gpt_state.pt")

    ref = {"source": SOURCE_NAME, "val_file": os.path.basename(VAL_PATH),
           "val_bytes": len(val), "train_bytes": len(train_data), "train_steps": steps,
           "train_seconds": round(seconds), "batch": BATCH, "perplexity": {}}
    for n in EVAL_CONTEXTS:
        ppl, tokens = perplexity(model, val, n)
        ref["perplexity"][str(n)] = {"perplexity": ppl, "tokens": tokens}
        print(f"val perplexity @ context {n}: {ppl:.6f} over {tokens} tokens")

    export(model, ONNX_PATH, OPSET, torch.zeros(1, CONTEXT, dtype=torch.int64))
    main_ppl = ref["perplexity"][str(CONTEXT)]
    set_metadata(ONNX_PATH, {
        "quantstudio.task": "language-model",
        "quantstudio.tokenizer": "bytes",
        "quantstudio.vocab": VOCAB,
        "quantstudio.context": CONTEXT,
        "quantstudio.dataset": SOURCE_NAME,
        "quantstudio.val_file": os.path.basename(VAL_PATH),
        "quantstudio.val_ppl": f"{main_ppl['perplexity']:.6f}",
        "quantstudio.val_ppl_context": CONTEXT,
        "quantstudio.val_tokens": main_ppl["tokens"],
        "quantstudio.train_steps": steps,
    })

    tokens = reference_windows(val, REF_WINDOWS, REF_WINDOW_LEN, 1000)
    with torch.no_grad():
        np.save(REF_TOKENS, tokens.numpy())
        np.save(REF_LOGITS, model(tokens).numpy().astype(np.float32))

    export_twins(val)
    ref["reference_windows"] = {"file": os.path.basename(REF_TOKENS),
                                "count": REF_WINDOWS, "length": REF_WINDOW_LEN,
                                "val_offsets": [i * 1000 for i in range(REF_WINDOWS)]}
    with open(REF_JSON, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(json.dumps(ref["perplexity"]))
    print(f"wrote {ONNX_PATH} ({os.path.getsize(ONNX_PATH)} bytes)")


if __name__ == "__main__":
    main()
