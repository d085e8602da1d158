// Text and token-id files as datasets of token windows for language models: "text:FILE"
// (bytes as tokens, or the ids of a tokenizer, data/tokenizer.h) and "tokens:FILE"
// (NPY or raw uint16/uint32 token ids, as nanoGPT's .bin files).
#pragma once

#include "data/dataset.h"

#include <string>

namespace qs {

struct TextOptions {
    int64_t context = 0;   // tokens per window (at least 1)
    int64_t limit = -1;    // >= 0: keep the first `limit` windows
    int64_t vocabSize = 0; // > 0: an id at or above it fails naming the file, the index and the id
    std::string tokenizer; // text: "spm:FILE" or "hf:FILE" (data/tokenizer.h); "": a byte is a token
};

// Cuts a file's tokens (the bytes, token = byte value, vocab 256; or the ids of
// `tokenizer`) into non-overlapping windows of `context` tokens: window k holds tokens
// [k*context, k*context + context) as int64 inputs [W, context] and the next tokens
// [k*context + 1, k*context + context + 1) as targets, so every token after the first
// is predicted exactly once; the trailing (tokens - 1) mod context are dropped.
// With a tokenizer, Dataset::tokenizer is its canonicalTokenizerSpec() (absolute path).
Dataset loadTextDataset(const std::string& path, const TextOptions& options);
Dataset loadTextDataset(const std::string& path, int64_t context, int64_t limit = -1);

// The same windows from a token-id file: `spec` is FILE.npy (1-D int32, int64, uint16
// or uint32) or FILE:u16 / FILE:u32 (raw little-endian ids, nanoGPT's train.bin).
Dataset loadTokenDataset(const std::string& spec, const TextOptions& options);

// The window length for `model`: `requested` when > 0, else the model input's fixed
// sequence dimension, else its metadata quantstudio.context; fails naming the model
// when none is known or `requested` exceeds a fixed dimension.
int64_t textContextFor(const Graph& model, int64_t requested);

// The number of token ids `model` takes: the rows of the embedding table (a Gather of
// a constant along axis 0) that its first input indexes, else the last dimension of its
// first output (the logits); 0 when neither is known.
int64_t modelVocabularySize(const Graph& model);

} // namespace qs
