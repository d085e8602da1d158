// The model and dataset rows every recorded run refers to: a model is its file
// (by SHA-256), a dataset its kind and content hash. Shared by the CLI and the GUI.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "store/store.h"

#include <cstdint>
#include <string>

namespace qs {

// Upserts the model read from `path` (hashing the file); returns its id.
int64_t recordModel(Store& store, const Graph& graph, const std::string& path);
// Upserts the dataset (absolute path, except for random:N); returns its id.
int64_t recordDataset(Store& store, const Dataset& data);

} // namespace qs
