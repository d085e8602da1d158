// The experiment store: the studio's record in one SQLite file (WAL, foreign keys
// on). A run is inserted as `running` by beginRun() and finalized once by
// finishRun()/failRun()/cancelRun(); after that it is immutable except for its
// note and tags. A run whose writing process died shows as `interrupted`.
//
// Thread-safety: a Store is one SQLite connection; use one Store per thread
// (the GUI thread and each job open their own). Processes and threads share the
// file through SQLite's locking: readers never wait for a writer.
//
//   Store store = Store::open(defaultStorePath());
//   int64_t model = store.upsertModel({.hash = h, .name = "resnet18", ...});
//   RunGuard run(store, RunStart{model, dataset, RunKind::Quantization, config});
//   run.addLayers(layers);
//   run.finish(metrics);        // destroyed unfinished: recorded as failed
#pragma once

#include "store/records.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qs {

// $XDG_DATA_HOME/QuantStudio/studio.db, else ~/.local/share/QuantStudio/studio.db.
std::string defaultStorePath();

enum class OpenMode {
    ReadWrite, // creates the file (and its folder) if missing, upgrades the schema
    ReadOnly,  // never writes to the file; refuses stores that would need an upgrade
};

struct StoreOptions {
    OpenMode mode = OpenMode::ReadWrite;
    int busyTimeoutMs = 5000; // how long to wait for another writer before failing
    bool createIfMissing = true; // ReadWrite only
};

class Store {
public:
    // Opens (or creates) the store. Throws an Error naming the file when it is
    // corrupt or not a store, from a newer version, read-only while opened for
    // writing, or locked beyond the timeout; in each case the file is unchanged.
    // A writable open marks runs of dead writers `interrupted`.
    static Store open(const std::string& path, const StoreOptions& options = {});

    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;
    // Runs this Store began and did not finish are recorded as interrupted.
    ~Store();

    const std::string& path() const;
    bool readOnly() const;
    int schemaVersion() const;

    // Models and datasets: the same content (hash) is one row; a re-import
    // refreshes name and path and returns the existing id.
    int64_t upsertModel(const ModelRecord& model);
    int64_t upsertDataset(const DatasetRecord& dataset);
    std::optional<ModelRecord> model(int64_t id) const;
    std::optional<ModelRecord> modelByHash(const std::string& hash) const;
    std::vector<ModelRecord> models() const;
    std::optional<DatasetRecord> dataset(int64_t id) const;
    std::vector<DatasetRecord> datasets() const;

    // Recording a run. Each call is one transaction.
    int64_t beginRun(const RunStart& start);
    void addLayerResults(int64_t runId, const std::vector<LayerResult>& layers);
    // state: Done, Failed or Cancelled (Interrupted is the store's to decide).
    void finishRun(int64_t runId, RunState state, const RunMetrics& metrics = {}, const std::string& error = {});
    void failRun(int64_t runId, const std::string& error, const RunMetrics& partial = {});
    void cancelRun(int64_t runId, const RunMetrics& partial = {});
    // Exported files may be attached to a run at any time.
    int64_t addArtifact(int64_t runId, const ArtifactRecord& artifact);

    // The only edits of a stored run.
    void setNote(int64_t runId, const std::string& note);
    void setTags(int64_t runId, const std::vector<std::string>& tags);
    void addTag(int64_t runId, const std::string& tag);
    void removeTag(int64_t runId, const std::string& tag);
    // Deletes the run with its layer rows, tags and artifact rows (not the files);
    // models and datasets stay. Refuses a run that is still being written.
    void deleteRun(int64_t runId);

    std::optional<RunRecord> findRun(int64_t runId) const;
    RunRecord run(int64_t runId) const; // throws an Error when there is no such run
    std::vector<RunRecord> runs(const RunFilter& filter = {}) const; // newest first
    std::vector<LayerResult> layerResults(int64_t runId) const;      // in position order
    std::vector<ArtifactRecord> artifacts(int64_t runId) const;

    // Measured latency tables, cached per machine (schema v3). add stores `profile`
    // for the current machine (its id and machine are ignored) and returns its id;
    // latest returns the newest one of this machine for (model, batch, threads).
    int64_t addLatencyProfile(const LatencyProfile& profile);
    std::optional<LatencyProfile> latestLatencyProfile(const std::string& modelHash, int batch, int threads) const;

    // Marks `running` runs whose writer is gone as interrupted; returns how many.
    // Done by open() too; skipped (without error) if the database is busy then.
    int recoverInterrupted();
    // PRAGMA integrity_check: "ok" or SQLite's findings.
    std::string integrityCheck() const;

private:
    struct Impl;
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> d_;
};

// Finishes a run exactly once. Destroyed unfinished (an exception, an early
// return) it records the run as failed with a message saying so.
class RunGuard {
public:
    RunGuard(Store& store, const RunStart& start);
    ~RunGuard();
    RunGuard(const RunGuard&) = delete;
    RunGuard& operator=(const RunGuard&) = delete;

    int64_t id() const { return id_; }
    bool finished() const { return finished_; }
    void addLayers(const std::vector<LayerResult>& layers);
    void finish(const RunMetrics& metrics = {});
    void fail(const std::string& error, const RunMetrics& partial = {});
    void cancel(const RunMetrics& partial = {});

private:
    Store& store_;
    int64_t id_;
    bool finished_ = false;
    int uncaught_;
};

// Records `work` as one run: done with the metrics it returns, cancelled if it
// throws qs::Cancelled, failed with the message if it throws anything else (the
// exception is rethrown in both cases). Returns the run id.
int64_t recordRun(Store& store, const RunStart& start, const std::function<RunMetrics(RunGuard&)>& work);

} // namespace qs
