// Datasets for inference, calibration and evaluation: IDX images, NPY arrays or
// synthetic inputs, scaled to [0,1] and normalized per channel; or byte text cut
// into token windows for language models (text:FILE, see data/text.h).
#pragma once

#include "graph/graph.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

struct DataOptions {
    std::string spec;                      // IDX/NPY path, "random:N" or "text:FILE"
    std::optional<std::string> labelsPath; // else found beside an IDX file by its standard name
    std::optional<std::vector<float>> mean, std; // else from model metadata, else none
    int64_t limit = -1;                    // keep the first N samples (< 0: all)
    uint64_t seed = 1;                     // for random:N
    int64_t context = 0;                   // text: window length (0: from the model, see textContextFor)
};

struct Dataset {
    std::string kind;                     // "idx", "npy", "random", "text"
    std::string path;                     // file or spec
    std::string labelsPath;
    Tensor inputs;                        // float32 [N, ...model input shape without batch]; text: int64 [N, context]
    std::optional<std::vector<int64_t>> labels;
    std::optional<Tensor> targets;        // text: int64 [N, context], the next token of every input position
    std::vector<float> mean, std;         // what was applied (empty: none)
    std::string hash;                     // content hash of the source files (for the store)

    int64_t count() const { return inputs.shape.empty() ? 0 : inputs.shape[0]; }
    // Samples [start, start+n) as a batch tensor (copy).
    Tensor batch(int64_t start, int64_t n) const;
    // The targets of the same samples (text only).
    Tensor targetBatch(int64_t start, int64_t n) const;
};

// Loads and normalizes for `model`'s first input. Errors name the file and what
// does not fit (sample shape vs the model's input, label count, ...).
Dataset loadDataset(const DataOptions& options, const Graph& model);
// The same with every other option at its default (the studio's jobs).
Dataset loadDataset(const std::string& spec, int64_t limit, const Graph& model);

// "a,b,c" from the model's metadata_props (quantstudio.mean / quantstudio.std).
std::optional<std::vector<float>> metadataFloats(const Graph& model, const std::string& key);

// The standard label file next to an IDX image file ("" when there is none).
std::string findIdxLabels(const std::string& imagesPath);

} // namespace qs
