// Byte-level text as a dataset of token windows for language models ("text:FILE").
#pragma once

#include "data/dataset.h"

#include <string>

namespace qs {

// Reads `path` as bytes (token = byte value, vocab 256) and cuts it into
// non-overlapping windows of `context` tokens: window k holds bytes
// [k*context, k*context + context) as int64 inputs [W, context] and the next bytes
// [k*context + 1, k*context + context + 1) as targets, so every byte after the first
// is predicted exactly once; the trailing (size - 1) mod context bytes are dropped.
// `limit` >= 0 keeps the first `limit` windows.
Dataset loadTextDataset(const std::string& path, int64_t context, int64_t limit = -1);

// The window length for `model`: `requested` when > 0, else the model input's fixed
// sequence dimension, else its metadata quantstudio.context; fails naming the model
// when none is known or `requested` exceeds a fixed dimension.
int64_t textContextFor(const Graph& model, int64_t requested);

} // namespace qs
