#include "record/recording.h"

#include "util/hash.h"

#include <cstring>
#include <filesystem>

namespace qs {

int64_t recordModel(Store& store, const Graph& graph, const std::string& path)
{
    ModelRecord m;
    m.hash = sha256FileCached(path);
    m.name = std::filesystem::path(path).stem().string();
    m.path = std::filesystem::absolute(path).string();
    m.sizeBytes = int64_t(graph.fileBytes);
    m.opCounts = graph.opCounts();
    m.params = graph.parameterCount();
    return store.upsertModel(m);
}

namespace {

// The data spec with its path absolute, a kind prefix (text:, images:, imagelist:) kept.
std::string absoluteDataSpec(const std::string& spec)
{
    for (const char* prefix : {"text:", "images:", "imagelist:"})
        if (spec.rfind(prefix, 0) == 0)
            return prefix + std::filesystem::absolute(spec.substr(std::strlen(prefix))).string();
    return std::filesystem::absolute(spec).string();
}

} // namespace

int64_t recordDataset(Store& store, const Dataset& data)
{
    DatasetRecord d;
    d.kind = data.kind;
    d.path = data.kind == "random" ? data.path : absoluteDataSpec(data.path);
    d.count = data.count();
    d.hash = data.hash;
    return store.upsertDataset(d);
}

RunStart runStart(Store& store, RunKind kind, const Graph& graph, const std::string& path, const Dataset& data,
                  nlohmann::json config, std::vector<std::string> tags)
{
    RunStart start;
    start.modelId = recordModel(store, graph, path);
    start.datasetId = recordDataset(store, data);
    start.kind = kind;
    start.config = std::move(config);
    start.tags = std::move(tags);
    return start;
}

ArtifactRecord recordArtifact(
    Store& store, int64_t runId, const std::string& path, const std::string& format, const std::string& bytes)
{
    ArtifactRecord a;
    a.runId = runId;
    a.path = std::filesystem::absolute(path).string();
    a.format = format;
    a.hash = sha256Hex(bytes);
    a.sizeBytes = int64_t(bytes.size());
    a.id = store.addArtifact(runId, a);
    for (const auto& stored : store.artifacts(runId))
        if (stored.id == a.id)
            return stored;
    return a;
}

} // namespace qs
