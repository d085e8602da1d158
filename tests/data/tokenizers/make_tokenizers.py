#!/usr/bin/python3
"""Makes the tiny tokenizers of the tokenizer tests once, and the SentencePiece
reference ids. Run from anywhere with Debian's Python (python3-sentencepiece):

    /usr/bin/python3 tests/data/tokenizers/make_tokenizers.py

Writes, beside this script:
  spm_unigram.model, spm_bpe.model  SentencePiece models trained by sentencepiece's
                                    own trainer on the training text (vocab 400;
                                    unigram with nmt_nfkc normalization, bpe without)
  bpe.json                          a GPT-2 style byte-level BPE tokenizer.json:
                                    300 merges learned here by a plain BPE loop, the
                                    256 byte symbols, <|endoftext|> as special token
  bpe_prefix.json                   the same with add_prefix_space and a non-special
                                    added token "<mask>" that strips spaces on its left
  spm_ref.json                      {text file: {model: ids}} from sentencepiece's
                                    Python module, each line encoded on its own
The BPE reference ids come from Hugging Face's tokenizers (make_bpe_ref.js).
The training text is the demo's Jargon File slice plus sample.txt.
"""
import collections
import json
import os
import re

import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
texts = {"sample.txt": os.path.join(here, "sample.txt"),
         "byte_gpt_val.txt": os.path.join(root, "resources", "demo", "byte_gpt_val.txt")}


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


train_text = read(texts["byte_gpt_val.txt"]) + read(texts["sample.txt"])
train_path = os.path.join(here, "train.tmp")
with open(train_path, "w", encoding="utf-8", newline="") as f:
    f.write(train_text)

# SentencePiece: its own trainer, deterministic on one thread.
# The BPE one without normalization (a model file of a few KB, and the identity path).
for kind in ("unigram", "bpe"):
    spm.SentencePieceTrainer.train(input=train_path, model_prefix=os.path.join(here, "spm_" + kind),
                                   vocab_size=400, model_type=kind, character_coverage=1.0,
                                   num_threads=1, seed_sentencepiece_size=100000, minloglevel=2,
                                   normalization_rule_name="nmt_nfkc" if kind == "unigram" else "identity")
    os.remove(os.path.join(here, "spm_" + kind + ".vocab"))
os.remove(train_path)


# Byte-level BPE, GPT-2 style: bytes mapped to printable characters.
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


byte_map = bytes_to_unicode()
# An approximation of the GPT-2 pre-tokenizer is good enough to learn merges.
words = collections.Counter(
    "".join(byte_map[b] for b in w.encode("utf-8"))
    for w in re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+", train_text))
splits = {w: list(w) for w in words}
merges = []
for _ in range(300):
    pairs = collections.Counter()
    for w, count in words.items():
        s = splits[w]
        for a, b in zip(s, s[1:]):
            pairs[a, b] += count
    if not pairs:
        break
    best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
    merges.append(best)
    for w in words:
        s, out, i = splits[w], [], 0
        while i < len(s):
            if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                out.append(s[i] + s[i + 1])
                i += 2
            else:
                out.append(s[i])
                i += 1
        splits[w] = out
vocab = {}
for b in range(256):
    vocab[byte_map[b]] = len(vocab)
for a, b in merges:
    vocab.setdefault(a + b, len(vocab))


def tokenizer_json(prefix_space, added):
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [dict(id=len(vocab) + i, content=c, single_word=False, lstrip=l, rstrip=False,
                              normalized=False, special=sp) for i, (c, l, sp) in enumerate(added)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": prefix_space, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [a + " " + b for a, b in merges]},
    }


with open(os.path.join(here, "bpe.json"), "w", encoding="utf-8") as f:
    json.dump(tokenizer_json(False, [("<|endoftext|>", False, True)]), f, ensure_ascii=False, indent=1)
with open(os.path.join(here, "bpe_prefix.json"), "w", encoding="utf-8") as f:
    json.dump(tokenizer_json(True, [("<|endoftext|>", False, True), ("<mask>", True, False)]), f,
              ensure_ascii=False, indent=1)

ref = {}
for name, path in texts.items():
    lines = read(path).split("\n")
    ref[name] = {}
    for kind in ("unigram", "bpe"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(here, "spm_" + kind + ".model"))
        ref[name]["spm_" + kind + ".model"] = [i for line in lines for i in sp.encode(line)]
with open(os.path.join(here, "spm_ref.json"), "w") as f:
    json.dump(ref, f)
