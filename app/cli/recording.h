// Recording CLI work in the experiment store (--db): the model and dataset rows
// every run refers to.
#pragma once

#include "cli/args.h"
#include "data/dataset.h"
#include "graph/graph.h"
#include "store/store.h"

#include <optional>
#include <string>

namespace qs::cli {

// The store named by --db, or nullopt when --db is absent.
std::optional<Store> storeFromArgs(const Args& args);
int64_t recordModel(Store& store, const Graph& graph, const std::string& path);
int64_t recordDataset(Store& store, const Dataset& data);

} // namespace qs::cli
