// Reference ids of the byte-level BPE tokenizers (bpe.json, bpe_prefix.json) from
// Hugging Face's tokenizers (the Rust library, npm @anush008/tokenizers native
// bindings), written to bpe_ref.json as {text file: {tokenizer: ids}}; first writes
// mixed.txt, 3000 pieces drawn by a fixed LCG from the cases the GPT-2 regex and the
// added tokens treat apart (contractions, every White_Space kind, letters and numbers
// of several scripts, marks, emoji sequences, the added tokens). Run once:
//     cd tests/data/tokenizers && npm ci --no-audit --no-fund && node make_bpe_ref.js
// (after make_tokenizers.py; nothing here runs at build or test time). Also the ids of
// the pretrained GPT-2 tokenizer that tools/corpus.js assembles into the corpus cache
// (tests/corpus/tokenizers.tsv) for sample.txt and mixed.txt, as "gpt2".
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const { Tokenizer } = require("@anush008/tokenizers");
const corpus = process.env.QS_CORPUS_DIR ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "quantstudio", "corpus");

const here = __dirname;
const pieces = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'x", " ", "  ", "   ", "\t", "\n", "\n\n",
    "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b", "\u000c", " \n ", "a", "Zebra", "h\u00e9llo",
    "\u00fcn\u00ef", "\u65e5\u672c", "\ud55c\uad6d", "123", "\u0663", "\u216b", "\u00bd", "\u00b2", "!", "?!", "...",
    "\u2014", "'", "\"", "\u{1F600}", "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}", "\u{1F1EB}\u{1F1F7}", "<|endoftext|>",
    "<mask>", " <mask> ", "x<|endoftext|>y", "\u0301", "\u200d", "\ufeff", "\u01c5", "\u02b0", "\u2135",
    "\u{1D518}", "\u{10348}"];
let seed = 12345;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const mixed = [];
for (let k = 0; k < 3000; k++)
    mixed.push(pieces[Math.floor(random() * pieces.length)]);
fs.writeFileSync(path.join(here, "mixed.txt"), mixed.join(""));

const texts = {
    "sample.txt": path.join(here, "sample.txt"),
    "mixed.txt": path.join(here, "mixed.txt"),
    "byte_gpt_val.txt": path.join(here, "..", "..", "..", "resources", "demo", "byte_gpt_val.txt"),
};

(async () => {
    const ref = {};
    for (const [name, file] of Object.entries(texts)) {
        const text = fs.readFileSync(file, "utf8");
        ref[name] = {};
        for (const tok of ["bpe.json", "bpe_prefix.json"]) {
            const t = Tokenizer.fromFile(path.join(here, tok));
            const enc = await t.encode(text, null, { addSpecialTokens: false });
            ref[name][tok] = enc.getIds();
        }
        if (name !== "byte_gpt_val.txt") {
            const t = Tokenizer.fromFile(path.join(corpus, "gpt2.tokenizer.json"));
            ref[name]["gpt2"] = (await t.encode(text, null, { addSpecialTokens: false })).getIds();
        }
    }
    fs.writeFileSync(path.join(here, "bpe_ref.json"), JSON.stringify(ref));
})();
