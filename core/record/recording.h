// The model and dataset rows every recorded run refers to: a model is its file
// (by SHA-256), a dataset its kind and content hash; and the artifact rows of the
// files made from a run. Shared by the CLI and the GUI.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "store/store.h"

#include "util/error.h"

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace qs {

// Upserts the model read from `path` (hashing the file); returns its id.
int64_t recordModel(Store& store, const Graph& graph, const std::string& path);
// Upserts the dataset (absolute path, except for random:N); returns its id.
int64_t recordDataset(Store& store, const Dataset& data);

// The start of a `kind` run on the model read from `path` and on `data`, their rows
// upserted (recordModel, recordDataset).
RunStart runStart(Store& store, RunKind kind, const Graph& graph, const std::string& path, const Dataset& data,
                  nlohmann::json config, std::vector<std::string> tags = {});

// Records the file written at `path` (its `bytes`, in `format`) as an artifact of the
// run: absolute path, SHA-256 and size. Returns the row as stored.
ArtifactRecord recordArtifact(
    Store& store, int64_t runId, const std::string& path, const std::string& format, const std::string& bytes);

// Runs `work`; if it throws, the run (when recorded) ends as cancelled for
// qs::Cancelled and as failed with the message otherwise, and the exception goes on.
template<class Work>
auto runRecorded(std::optional<RunGuard>& run, Work&& work) -> decltype(work())
{
    try {
        return work();
    } catch (const Cancelled&) {
        if (run)
            run->cancel();
        throw;
    } catch (const std::exception& e) {
        if (run)
            run->fail(e.what());
        throw;
    }
}

} // namespace qs
