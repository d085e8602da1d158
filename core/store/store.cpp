// The experiment store over SQLite: opening with its checks, recording runs in
// transactions, reading them back, and telling interrupted runs from live ones.
#include "store/store.h"

#include "store/histogram_blob.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/writer_lock.h"
#include "util/error.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace qs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t nowMs()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t pragmaInt(sqlite::Db& db, const char* pragma, std::string_view doing = "reading a setting")
{
    sqlite::Stmt q(db, std::string("PRAGMA ") + pragma, doing);
    return q.step() ? q.int64(0) : 0;
}

json parseJsonColumn(const std::string& text, const std::string& path, const char* column)
{
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded())
        fail(path, ": column ", column, " holds invalid JSON");
    return j;
}

void requireObject(const json& j, const std::string& what)
{
    if (!j.is_object())
        fail(what, " must be a JSON object, got ", j.type_name());
}

void validateLayer(const LayerResult& l, int64_t runId)
{
    if (l.layer.empty())
        fail("run ", runId, ": a layer result has an empty layer name");
    auto checkBits = [&](const std::optional<int>& bits, const char* which) {
        if (bits && (*bits < 1 || *bits > 32))
            fail("run ", runId, ": layer ", quoted(l.layer), ": ", which, " bits must be 1..32, got ", *bits);
    };
    checkBits(l.weightBits, "weight");
    checkBits(l.actBits, "activation");
    requireObject(l.scales, str("layer ", quoted(l.layer), " scales"));
    requireObject(l.sensitivityDetail, str("layer ", quoted(l.layer), " sensitivity detail"));
    requireObject(l.extra, str("layer ", quoted(l.layer), " extra"));
}

const char* kRunColumns = R"sql(
  r.id, r.model_id, m.name, m.hash, r.dataset_id, COALESCE(d.path, ''), r.kind, r.config, r.state,
  r.started_ms, r.finished_ms, r.error, r.top1, r.sqnr_db, r.cosine, r.top1_agreement, r.kl, r.size_bits,
  r.latency_ms, r.metrics_extra, r.note,
  (SELECT count(*) FROM layer_results l WHERE l.run_id = r.id),
  r.writer_pid, r.writer_host, r.writer_slot,
  (SELECT json_group_array(tag) FROM (SELECT tag FROM run_tags t WHERE t.run_id = r.id ORDER BY tag)),
  mc.hostname, mc.os, mc.cpu, mc.cores, mc.memory_bytes
FROM runs r
  JOIN models m ON m.id = r.model_id
  LEFT JOIN datasets d ON d.id = r.dataset_id
  LEFT JOIN machines mc ON mc.id = r.machine_id
)sql";

const char* kLayerColumns = R"sql(
  position, layer, op, weight_bits, act_bits, granularity, symmetric, scales, sqnr_db, sensitivity,
  sensitivity_detail, size_bits, weight_hist, act_hist, weight_clip_lo, weight_clip_hi, act_clip_lo,
  act_clip_hi, extra
)sql";

// The SQLite header fields we judge a file by, read with plain file I/O so that a
// file we refuse is never handed to SQLite (which, for a WAL database opened
// read-only, would leave -wal/-shm files behind). The WAL may hold a newer page 1,
// so the same checks are repeated through SQLite after opening.
struct FileHeader {
    bool empty = true;
    int64_t appId = 0, version = 0;
};

FileHeader readFileHeader(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, ": cannot read the file: ", std::strerror(errno));
    unsigned char h[100] = {};
    in.read(reinterpret_cast<char*>(h), sizeof h);
    const std::streamsize got = in.gcount();
    if (got == 0)
        return {};
    if (got < 100 || std::memcmp(h, "SQLite format 3", 16) != 0)
        fail(path, ": reading the store header: the file is corrupt or not an SQLite database (no SQLite header)");
    auto be32 = [&](int at) { return int64_t(int32_t(uint32_t(h[at]) << 24 | uint32_t(h[at + 1]) << 16 |
                                                     uint32_t(h[at + 2]) << 8 | uint32_t(h[at + 3]))); };
    return {false, be32(68), be32(60)};
}

void checkHeader(const std::string& path, int64_t appId, int64_t version, int64_t objects)
{
    if (appId != kStoreApplicationId && (appId != 0 || version != 0 || objects != 0))
        fail(path, ": not a QuantStudio store (an SQLite file with application_id ", appId, ", user_version ",
             version, objects > 0 ? str(" and ", objects, " schema objects") : std::string(), ")");
    if (version > currentSchemaVersion())
        fail(path, ": the store has schema version ", version, ", newer than this program's ", currentSchemaVersion(),
             "; open it with a newer QuantStudio");
}

std::string interruptedMessage(int64_t pid, const std::string& host)
{
    return str("interrupted: the process writing this run (pid ", pid, host.empty() ? "" : " on " + host,
               ") ended before finishing it");
}

} // namespace

std::string defaultStorePath()
{
    fs::path base;
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg && fs::path(xdg).is_absolute()) {
        base = xdg;
    } else {
        const char* home = std::getenv("HOME");
        if (!home || !*home) {
            const passwd* pw = ::getpwuid(::getuid());
            home = pw ? pw->pw_dir : nullptr;
        }
        if (!home || !*home)
            fail("cannot find a folder for the store: neither XDG_DATA_HOME nor HOME is set");
        base = fs::path(home) / ".local" / "share";
    }
    return (base / "QuantStudio" / "studio.db").string();
}

struct Store::Impl {
    sqlite::Db db;
    StoreOptions options;
    std::unique_ptr<WriterLock> lock; // taken by the first beginRun()

    const std::string& path() const { return db.path(); }

    void requireWritable(const char* doing) const
    {
        if (options.mode == OpenMode::ReadOnly)
            fail(path(), ": ", doing, ": the store was opened read-only");
    }

    int64_t ownSlot() const { return lock ? lock->slot() : 0; }

    // Row of kRunColumns -> record; `probe` decides whether a running run lives.
    RunRecord readRun(const sqlite::Stmt& q, const WriterProbe& probe) const
    {
        RunRecord r;
        r.id = q.int64(0);
        r.modelId = q.int64(1);
        r.modelName = q.text(2);
        r.modelHash = q.text(3);
        r.datasetId = q.optInt64(4);
        r.datasetPath = q.text(5);
        r.kind = parseRunKind(q.text(6));
        r.config = parseJsonColumn(q.text(7), path(), "runs.config");
        r.state = parseRunState(q.text(8));
        r.startedMs = q.int64(9);
        r.finishedMs = q.optInt64(10);
        r.error = q.text(11);
        r.metrics.top1 = q.optReal(12);
        r.metrics.sqnrDb = q.optReal(13);
        r.metrics.cosine = q.optReal(14);
        r.metrics.top1Agreement = q.optReal(15);
        r.metrics.kl = q.optReal(16);
        r.metrics.sizeBits = q.optReal(17);
        r.metrics.latencyMs = q.optReal(18);
        r.metrics.extra = parseJsonColumn(q.text(19), path(), "runs.metrics_extra");
        r.note = q.text(20);
        r.layerCount = q.int64(21);
        r.writerPid = q.optInt64(22).value_or(0);
        r.writerHost = q.text(23);
        const int64_t slot = q.optInt64(24).value_or(0);
        for (const auto& t : parseJsonColumn(q.text(25), path(), "run_tags"))
            r.tags.push_back(t.get<std::string>());
        if (!q.isNull(26))
            r.machine = MachineInfo{q.text(26), q.text(27), q.text(28), int(q.int64(29)), q.int64(30)};
        if (r.state == RunState::Running && slot != ownSlot() && !probe.alive(slot)) {
            r.state = RunState::Interrupted;
            r.error = interruptedMessage(r.writerPid, r.writerHost);
        }
        return r;
    }

    // The run's stored state and writer slot, or an error naming the run.
    std::pair<RunState, int64_t> runState(int64_t runId) const
    {
        sqlite::Stmt q(db, "SELECT state, writer_slot FROM runs WHERE id = ?");
        q.bindAll(runId);
        if (!q.step())
            fail(path(), ": run ", runId, " is not in the store");
        return {parseRunState(q.text(0)), q.optInt64(1).value_or(0)};
    }

    // Only the Store that began a run may add to or finish it, and only while it runs.
    void requireOwnRunningRun(int64_t runId) const
    {
        auto [state, slot] = runState(runId);
        if (state != RunState::Running)
            fail(path(), ": run ", runId, " is ", runStateName(state), "; a finished run cannot change");
        if (slot == 0 || slot != ownSlot())
            fail(path(), ": run ", runId, " is being recorded by another connection; only its writer can change it");
    }

    int64_t machineId()
    {
        const MachineInfo m = currentMachine();
        sqlite::Stmt q(db, "INSERT INTO machines(hostname, os, cpu, cores, memory_bytes) VALUES(?,?,?,?,?) "
                           "ON CONFLICT(hostname, os, cpu, cores, memory_bytes) DO UPDATE SET cores = excluded.cores "
                           "RETURNING id");
        q.bindAll(m.hostname, m.os, m.cpu, int64_t(m.cores), m.memoryBytes);
        q.step();
        return q.int64(0);
    }

    void insertTags(int64_t runId, const std::vector<std::string>& tags)
    {
        sqlite::Stmt ins(db, "INSERT OR IGNORE INTO run_tags(run_id, tag) VALUES(?, ?)");
        for (const auto& tag : tags) {
            if (tag.empty())
                fail("run ", runId, ": tags must not be empty");
            ins.reset();
            ins.bindAll(runId, tag).run();
        }
    }

    int recover(bool giveUpIfBusy)
    {
        std::vector<std::tuple<int64_t, int64_t, std::string>> dead;
        {
            WriterProbe probe(path());
            sqlite::Stmt q(db, "SELECT id, writer_slot, writer_pid, writer_host FROM runs WHERE state = 'running'");
            while (q.step()) {
                const int64_t slot = q.optInt64(1).value_or(0);
                if (slot != ownSlot() && !probe.alive(slot))
                    dead.emplace_back(q.int64(0), q.optInt64(2).value_or(0), q.text(3));
            }
        }
        if (dead.empty())
            return 0;
        if (giveUpIfBusy) {
            sqlite3_busy_timeout(db.handle(), 0);
            int rc = sqlite3_exec(db.handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
            sqlite3_busy_timeout(db.handle(), options.busyTimeoutMs);
            if ((rc & 0xff) == SQLITE_BUSY)
                return 0; // a writer is active; the next open or reader sees them as interrupted anyway
            if (rc != SQLITE_OK)
                db.raise(rc, "recovering interrupted runs");
        } else {
            db.exec("BEGIN IMMEDIATE", "recovering interrupted runs");
        }
        try {
            sqlite::Stmt up(db, "UPDATE runs SET state = 'interrupted', error = ? WHERE id = ? AND state = 'running'");
            int n = 0;
            for (const auto& [id, pid, host] : dead) {
                up.reset();
                up.bindAll(interruptedMessage(pid, host), id).run();
                n += db.changes();
            }
            db.exec("COMMIT", "recovering interrupted runs");
            return n;
        } catch (...) {
            sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
};

Store::Store(std::unique_ptr<Impl> impl) : d_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

Store::~Store()
{
    if (!d_ || !d_->lock)
        return;
    // Runs this Store began and never finished cannot be finished by anyone now.
    try {
        sqlite::Stmt q(d_->db, "UPDATE runs SET state = 'interrupted', finished_ms = ?, "
                               "error = 'interrupted: the store was closed before the run finished' "
                               "WHERE state = 'running' AND writer_slot = ?");
        q.bindAll(nowMs(), d_->lock->slot()).run();
    } catch (...) {
        // Best effort: if this fails, the released lock marks them interrupted later.
    }
}

Store Store::open(const std::string& path, const StoreOptions& options)
{
    if (path.empty())
        fail("the store path is empty");
    const bool readOnly = options.mode == OpenMode::ReadOnly;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (exists && fs::is_directory(path, ec))
        fail(path, ": is a folder, not a store file");
    if (!exists && (readOnly || !options.createIfMissing))
        fail(path, ": no store at this path");
    if (!exists) {
        const fs::path parent = fs::path(path).parent_path();
        if (!parent.empty() && !fs::exists(parent, ec)) {
            fs::create_directories(parent, ec);
            if (ec)
                fail(path, ": cannot create its folder: ", ec.message());
        }
    } else if (!readOnly) {
        // Refuse a file marked read-only even where the OS would let us write it
        // (root): the user meant to protect it.
        struct stat st;
        if (::stat(path.c_str(), &st) == 0 && !(st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)))
            fail(path, ": the file is read-only; open the store read-only to look at it");
        if (::access(path.c_str(), W_OK) != 0)
            fail(path, ": the file is not writable: ", std::strerror(errno));
    }

    if (exists) {
        const FileHeader header = readFileHeader(path);
        // Schema objects are counted once SQLite has the file; 0 lets an empty
        // SQLite file through to that check.
        if (!header.empty)
            checkHeader(path, header.appId, header.version, 0);
    }

    const int flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite::Db db(path, flags, options.busyTimeoutMs);

    // Everything up to here only reads: a file we refuse is left as it was.
    const char* doing = "reading the store header";
    const int64_t appId = pragmaInt(db, "application_id", doing);
    const int64_t version = pragmaInt(db, "user_version", doing);
    const int64_t objects = [&] {
        sqlite::Stmt count(db, "SELECT count(*) FROM sqlite_schema", doing);
        count.step();
        return count.int64(0);
    }();
    checkHeader(path, appId, version, objects);
    if (readOnly) {
        if (version < currentSchemaVersion())
            fail(path, ": the store has schema version ", version, " and needs upgrading to ", currentSchemaVersion(),
                 "; open it once for writing (read-only opens never change the file)");
    } else {
        {
            sqlite::Stmt wal(db, "PRAGMA journal_mode = WAL", "switching to WAL mode");
            const std::string mode = wal.step() ? wal.text(0) : std::string();
            if (mode != "wal")
                fail(path, ": cannot switch the store to WAL mode (journal mode is ", quoted(mode), ")");
        }
        db.exec("PRAGMA synchronous = NORMAL", "configuring the store");
        if (version < currentSchemaVersion())
            migrateSchema(db, currentSchemaVersion());
    }
    db.exec("PRAGMA foreign_keys = ON", "configuring the store");

    auto impl = std::make_unique<Impl>();
    impl->db = std::move(db);
    impl->options = options;
    Store store(std::move(impl));
    if (!readOnly)
        store.d_->recover(/*giveUpIfBusy=*/true);
    return store;
}

const std::string& Store::path() const
{
    return d_->path();
}

bool Store::readOnly() const
{
    return d_->options.mode == OpenMode::ReadOnly;
}

int Store::schemaVersion() const
{
    return int(pragmaInt(d_->db, "user_version"));
}

// ---- models and datasets ----

int64_t Store::upsertModel(const ModelRecord& m)
{
    d_->requireWritable("storing a model");
    if (m.hash.empty())
        fail(path(), ": model ", quoted(m.name), " has no content hash");
    requireObject(m.opCounts, str("model ", quoted(m.name), " op counts"));
    sqlite::Transaction tx(d_->db, "storing a model");
    sqlite::Stmt q(d_->db, "INSERT INTO models(hash, name, path, size_bytes, op_counts, params, imported_ms) "
                           "VALUES(?,?,?,?,?,?,?) "
                           "ON CONFLICT(hash) DO UPDATE SET name = excluded.name, path = excluded.path RETURNING id");
    q.bindAll(m.hash, m.name, m.path, m.sizeBytes, m.opCounts.dump(), m.params, m.importedMs ? m.importedMs : nowMs());
    q.step();
    const int64_t id = q.int64(0);
    q.reset();
    tx.commit();
    return id;
}

int64_t Store::upsertDataset(const DatasetRecord& ds)
{
    d_->requireWritable("storing a dataset");
    if (ds.hash.empty())
        fail(path(), ": dataset ", quoted(ds.path), " has no content hash");
    sqlite::Transaction tx(d_->db, "storing a dataset");
    sqlite::Stmt q(d_->db, "INSERT INTO datasets(kind, path, count, hash, added_ms) VALUES(?,?,?,?,?) "
                           "ON CONFLICT(kind, hash) DO UPDATE SET path = excluded.path, count = excluded.count "
                           "RETURNING id");
    q.bindAll(ds.kind, ds.path, ds.count, ds.hash, ds.addedMs ? ds.addedMs : nowMs());
    q.step();
    const int64_t id = q.int64(0);
    q.reset();
    tx.commit();
    return id;
}

namespace {

const char* kModelSelect = "SELECT id, hash, name, path, size_bytes, op_counts, params, imported_ms FROM models ";

ModelRecord readModel(const sqlite::Stmt& q, const std::string& path)
{
    return {q.int64(0), q.text(1), q.text(2), q.text(3), q.int64(4),
            parseJsonColumn(q.text(5), path, "models.op_counts"), q.int64(6), q.int64(7)};
}

const char* kDatasetSelect = "SELECT id, kind, path, count, hash, added_ms FROM datasets ";

DatasetRecord readDataset(const sqlite::Stmt& q)
{
    return {q.int64(0), q.text(1), q.text(2), q.int64(3), q.text(4), q.int64(5)};
}

} // namespace

std::optional<ModelRecord> Store::model(int64_t id) const
{
    sqlite::Stmt q(d_->db, std::string(kModelSelect) + "WHERE id = ?");
    q.bindAll(id);
    return q.step() ? std::optional(readModel(q, path())) : std::nullopt;
}

std::optional<ModelRecord> Store::modelByHash(const std::string& hash) const
{
    sqlite::Stmt q(d_->db, std::string(kModelSelect) + "WHERE hash = ?");
    q.bindAll(hash);
    return q.step() ? std::optional(readModel(q, path())) : std::nullopt;
}

std::vector<ModelRecord> Store::models() const
{
    sqlite::Stmt q(d_->db, std::string(kModelSelect) + "ORDER BY id");
    std::vector<ModelRecord> out;
    while (q.step())
        out.push_back(readModel(q, path()));
    return out;
}

std::optional<DatasetRecord> Store::dataset(int64_t id) const
{
    sqlite::Stmt q(d_->db, std::string(kDatasetSelect) + "WHERE id = ?");
    q.bindAll(id);
    return q.step() ? std::optional(readDataset(q)) : std::nullopt;
}

std::vector<DatasetRecord> Store::datasets() const
{
    sqlite::Stmt q(d_->db, std::string(kDatasetSelect) + "ORDER BY id");
    std::vector<DatasetRecord> out;
    while (q.step())
        out.push_back(readDataset(q));
    return out;
}

// ---- recording runs ----

int64_t Store::beginRun(const RunStart& start)
{
    d_->requireWritable("recording a run");
    if (!d_->lock)
        d_->lock = std::make_unique<WriterLock>(path()); // before any run names our slot
    sqlite::Transaction tx(d_->db, "starting a run");
    if (!model(start.modelId))
        fail(path(), ": cannot start a run: model id ", start.modelId, " is not in the store");
    if (start.datasetId && !dataset(*start.datasetId))
        fail(path(), ": cannot start a run: dataset id ", *start.datasetId, " is not in the store");
    const int64_t machine = d_->machineId();
    const MachineInfo m = currentMachine();
    sqlite::Stmt q(d_->db, "INSERT INTO runs(model_id, dataset_id, kind, config, state, started_ms, note, writer_pid, "
                           "writer_host, writer_slot, machine_id) VALUES(?,?,?,?,'running',?,?,?,?,?,?)");
    q.bindAll(start.modelId, start.datasetId, runKindName(start.kind), start.config.dump(), nowMs(), start.note,
              int64_t(::getpid()), m.hostname, d_->lock->slot(), machine);
    q.run();
    const int64_t id = d_->db.lastInsertId();
    d_->insertTags(id, start.tags);
    tx.commit();
    return id;
}

void Store::addLayerResults(int64_t runId, const std::vector<LayerResult>& layers)
{
    d_->requireWritable("adding layer results");
    for (const auto& l : layers)
        validateLayer(l, runId);
    sqlite::Transaction tx(d_->db, "adding layer results");
    d_->requireOwnRunningRun(runId);
    sqlite::Stmt next(d_->db, "SELECT COALESCE(MAX(position) + 1, 0) FROM layer_results WHERE run_id = ?");
    next.bindAll(runId).step();
    int64_t position = next.int64(0);
    sqlite::Stmt exists(d_->db, "SELECT 1 FROM layer_results WHERE run_id = ? AND layer = ?");
    sqlite::Stmt ins(d_->db,
                     "INSERT INTO layer_results(run_id, position, layer, op, weight_bits, act_bits, granularity, "
                     "symmetric, scales, sqnr_db, sensitivity, sensitivity_detail, size_bits, weight_hist, act_hist, "
                     "weight_clip_lo, weight_clip_hi, act_clip_lo, act_clip_hi, extra) "
                     "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    for (const auto& l : layers) {
        exists.reset();
        if (exists.bindAll(runId, l.layer).step())
            fail(path(), ": run ", runId, ": layer ", quoted(l.layer), " is already recorded");
        ins.reset();
        ins.bindAll(runId, position++, l.layer, l.op, l.weightBits, l.actBits, l.granularity,
                    l.symmetric ? std::optional<int64_t>(*l.symmetric ? 1 : 0) : std::nullopt, l.scales.dump(),
                    l.sqnrDb, l.sensitivity, l.sensitivityDetail.dump(), l.sizeBits);
        if (l.weightHist)
            ins.bindBlob(14, encodeHistogram(*l.weightHist));
        if (l.actHist)
            ins.bindBlob(15, encodeHistogram(*l.actHist));
        auto lo = [](const std::optional<StoredRange>& r) { return r ? std::optional(r->lo) : std::nullopt; };
        auto hi = [](const std::optional<StoredRange>& r) { return r ? std::optional(r->hi) : std::nullopt; };
        ins.bind(16, lo(l.weightClip)).bind(17, hi(l.weightClip)).bind(18, lo(l.actClip)).bind(19, hi(l.actClip));
        ins.bind(20, l.extra.dump());
        ins.run();
    }
    tx.commit();
}

void Store::finishRun(int64_t runId, RunState state, const RunMetrics& metrics, const std::string& error)
{
    d_->requireWritable("finishing a run");
    if (state == RunState::Running || state == RunState::Interrupted)
        fail(path(), ": run ", runId, ": a run is finished as done, failed or cancelled, not ", runStateName(state));
    requireObject(metrics.extra, str("run ", runId, " extra metrics"));
    sqlite::Transaction tx(d_->db, "finishing a run");
    d_->requireOwnRunningRun(runId);
    sqlite::Stmt q(d_->db, "UPDATE runs SET state = ?, finished_ms = ?, error = ?, top1 = ?, sqnr_db = ?, cosine = ?, "
                           "top1_agreement = ?, kl = ?, size_bits = ?, latency_ms = ?, metrics_extra = ? WHERE id = ?");
    q.bindAll(runStateName(state), nowMs(), error, metrics.top1, metrics.sqnrDb, metrics.cosine, metrics.top1Agreement,
              metrics.kl, metrics.sizeBits, metrics.latencyMs, metrics.extra.dump(), runId);
    q.run();
    tx.commit();
}

void Store::failRun(int64_t runId, const std::string& error, const RunMetrics& partial)
{
    finishRun(runId, RunState::Failed, partial, error.empty() ? "failed" : error);
}

void Store::cancelRun(int64_t runId, const RunMetrics& partial)
{
    finishRun(runId, RunState::Cancelled, partial, "cancelled");
}

int64_t Store::addArtifact(int64_t runId, const ArtifactRecord& a)
{
    d_->requireWritable("adding an artifact");
    sqlite::Transaction tx(d_->db, "adding an artifact");
    d_->runState(runId);
    sqlite::Stmt q(d_->db, "INSERT INTO artifacts(run_id, path, format, hash, size_bytes, created_ms) "
                           "VALUES(?,?,?,?,?,?)");
    q.bindAll(runId, a.path, a.format, a.hash, a.sizeBytes, a.createdMs ? a.createdMs : nowMs()).run();
    const int64_t id = d_->db.lastInsertId();
    tx.commit();
    return id;
}

// ---- the only edits ----

void Store::setNote(int64_t runId, const std::string& note)
{
    d_->requireWritable("editing a note");
    sqlite::Transaction tx(d_->db, "editing a note");
    d_->runState(runId);
    sqlite::Stmt q(d_->db, "UPDATE runs SET note = ? WHERE id = ?");
    q.bindAll(note, runId).run();
    tx.commit();
}

void Store::setTags(int64_t runId, const std::vector<std::string>& tags)
{
    d_->requireWritable("editing tags");
    sqlite::Transaction tx(d_->db, "editing tags");
    d_->runState(runId);
    sqlite::Stmt del(d_->db, "DELETE FROM run_tags WHERE run_id = ?");
    del.bindAll(runId).run();
    d_->insertTags(runId, tags);
    tx.commit();
}

void Store::addTag(int64_t runId, const std::string& tag)
{
    d_->requireWritable("editing tags");
    sqlite::Transaction tx(d_->db, "editing tags");
    d_->runState(runId);
    d_->insertTags(runId, {tag});
    tx.commit();
}

void Store::removeTag(int64_t runId, const std::string& tag)
{
    d_->requireWritable("editing tags");
    sqlite::Transaction tx(d_->db, "editing tags");
    d_->runState(runId);
    sqlite::Stmt del(d_->db, "DELETE FROM run_tags WHERE run_id = ? AND tag = ?");
    del.bindAll(runId, tag).run();
    tx.commit();
}

void Store::deleteRun(int64_t runId)
{
    d_->requireWritable("deleting a run");
    sqlite::Transaction tx(d_->db, "deleting a run");
    auto [state, slot] = d_->runState(runId);
    if (state == RunState::Running && (slot == d_->ownSlot() || WriterProbe(path()).alive(slot)))
        fail(path(), ": run ", runId, " is still being recorded; delete it once it has finished");
    sqlite::Stmt q(d_->db, "DELETE FROM runs WHERE id = ?");
    q.bindAll(runId).run();
    tx.commit();
}

// ---- reading ----

std::optional<RunRecord> Store::findRun(int64_t runId) const
{
    sqlite::Stmt q(d_->db, std::string("SELECT ") + kRunColumns + " WHERE r.id = ?");
    q.bindAll(runId);
    if (!q.step())
        return std::nullopt;
    return d_->readRun(q, WriterProbe(path()));
}

RunRecord Store::run(int64_t runId) const
{
    if (auto r = findRun(runId))
        return *r;
    fail(path(), ": run ", runId, " is not in the store");
}

std::vector<RunRecord> Store::runs(const RunFilter& filter) const
{
    sqlite::Stmt q(d_->db, std::string("SELECT ") + kRunColumns + R"sql(
WHERE (?1 IS NULL OR m.name = ?1 OR (length(?1) >= 6 AND substr(m.hash, 1, length(?1)) = ?1))
  AND (?2 IS NULL OR r.kind = ?2)
  AND (?3 IS NULL OR EXISTS(SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.tag = ?3))
ORDER BY r.id DESC)sql");
    q.bind(1, filter.model);
    q.bind(2, filter.kind ? std::optional(runKindName(*filter.kind)) : std::nullopt);
    q.bind(3, filter.tag);
    WriterProbe probe(path());
    std::vector<RunRecord> out;
    while (q.step() && (filter.limit < 0 || int64_t(out.size()) < filter.limit)) {
        RunRecord r = d_->readRun(q, probe);
        if (!filter.state || r.state == *filter.state)
            out.push_back(std::move(r));
    }
    return out;
}

std::vector<LayerResult> Store::layerResults(int64_t runId) const
{
    sqlite::Stmt q(d_->db, std::string("SELECT ") + kLayerColumns + " FROM layer_results WHERE run_id = ? ORDER BY position");
    q.bindAll(runId);
    std::vector<LayerResult> out;
    while (q.step()) {
        LayerResult l;
        l.position = int(q.int64(0));
        l.layer = q.text(1);
        l.op = q.text(2);
        if (!q.isNull(3))
            l.weightBits = int(q.int64(3));
        if (!q.isNull(4))
            l.actBits = int(q.int64(4));
        l.granularity = q.text(5);
        if (!q.isNull(6))
            l.symmetric = q.int64(6) != 0;
        l.scales = parseJsonColumn(q.text(7), path(), "layer_results.scales");
        l.sqnrDb = q.optReal(8);
        l.sensitivity = q.optReal(9);
        l.sensitivityDetail = parseJsonColumn(q.text(10), path(), "layer_results.sensitivity_detail");
        l.sizeBits = q.optInt64(11);
        const std::string where = str(path(), ": run ", runId, " layer ", quoted(l.layer));
        if (!q.isNull(12))
            l.weightHist = decodeHistogram(q.blob(12), where + " weight histogram");
        if (!q.isNull(13))
            l.actHist = decodeHistogram(q.blob(13), where + " activation histogram");
        if (!q.isNull(14) && !q.isNull(15))
            l.weightClip = StoredRange{q.real(14), q.real(15)};
        if (!q.isNull(16) && !q.isNull(17))
            l.actClip = StoredRange{q.real(16), q.real(17)};
        l.extra = parseJsonColumn(q.text(18), path(), "layer_results.extra");
        out.push_back(std::move(l));
    }
    return out;
}

std::vector<ArtifactRecord> Store::artifacts(int64_t runId) const
{
    sqlite::Stmt q(d_->db, "SELECT id, run_id, path, format, hash, size_bytes, created_ms FROM artifacts "
                           "WHERE run_id = ? ORDER BY id");
    q.bindAll(runId);
    std::vector<ArtifactRecord> out;
    while (q.step())
        out.push_back({q.int64(0), q.int64(1), q.text(2), q.text(3), q.text(4), q.int64(5), q.int64(6)});
    return out;
}

int64_t Store::addLatencyProfile(const LatencyProfile& p)
{
    d_->requireWritable("storing a latency profile");
    if (p.modelHash.empty())
        fail(path(), ": a latency profile needs the model's hash");
    if (p.batch < 1 || p.threads < 0 || p.repeats < 1)
        fail(path(), ": latency profile with batch ", p.batch, ", threads ", p.threads, ", repeats ", p.repeats,
             ": expected batch >= 1, threads >= 0, repeats >= 1");
    sqlite::Transaction tx(d_->db, "storing a latency profile");
    const int64_t machine = d_->machineId();
    sqlite::Stmt q(d_->db, "INSERT INTO latency_profiles(machine_id, model_hash, batch, threads, isa, cpu_flags, "
                           "warmup, repeats, fp32_total_ms, int8_total_ms, other_ms, measured_ms) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
    q.bindAll(machine, p.modelHash, p.batch, p.threads, p.isa, json(p.cpuFlags).dump(), p.warmup, p.repeats,
        p.fp32TotalMs, p.int8TotalMs, p.otherMs, p.measuredMs ? p.measuredMs : nowMs());
    q.step();
    const int64_t id = q.int64(0);
    q.reset();
    sqlite::Stmt row(d_->db, "INSERT INTO layer_latencies(profile_id, position, layer, op, fp32_ms, int8_ms, "
                             "quantize_ms, dequantize_ms) VALUES(?,?,?,?,?,?,?,?)");
    for (std::size_t i = 0; i < p.layers.size(); ++i) {
        const LayerLatency& l = p.layers[i];
        if (l.layer.empty())
            fail(path(), ": latency profile: layer ", i, " has no name");
        row.reset();
        row.bindAll(id, int64_t(i), l.layer, l.op, l.fp32Ms, l.int8Ms, l.quantizeMs, l.dequantizeMs).run();
    }
    tx.commit();
    return id;
}

std::optional<LatencyProfile> Store::latestLatencyProfile(const std::string& modelHash, int batch, int threads) const
{
    const MachineInfo m = currentMachine();
    sqlite::Stmt q(d_->db, "SELECT p.id, p.isa, p.cpu_flags, p.warmup, p.repeats, p.fp32_total_ms, p.int8_total_ms, "
                           "p.other_ms, p.measured_ms FROM latency_profiles p JOIN machines mc ON mc.id = p.machine_id "
                           "WHERE mc.hostname = ? AND mc.os = ? AND mc.cpu = ? AND mc.cores = ? AND "
                           "mc.memory_bytes = ? AND p.model_hash = ? AND p.batch = ? AND p.threads = ? "
                           "ORDER BY p.measured_ms DESC, p.id DESC LIMIT 1",
        "reading latency profiles");
    q.bindAll(m.hostname, m.os, m.cpu, int64_t(m.cores), m.memoryBytes, modelHash, batch, threads);
    if (!q.step())
        return std::nullopt;
    LatencyProfile p;
    p.id = q.int64(0);
    p.modelHash = modelHash;
    p.batch = batch;
    p.threads = threads;
    p.isa = q.text(1);
    for (const auto& f : parseJsonColumn(q.text(2), path(), "latency_profiles.cpu_flags"))
        p.cpuFlags.push_back(f.get<std::string>());
    p.warmup = int(q.int64(3));
    p.repeats = int(q.int64(4));
    p.fp32TotalMs = q.real(5);
    p.int8TotalMs = q.real(6);
    p.otherMs = q.real(7);
    p.measuredMs = q.int64(8);
    p.machine = m;
    sqlite::Stmt rows(d_->db, "SELECT layer, op, fp32_ms, int8_ms, quantize_ms, dequantize_ms FROM layer_latencies "
                              "WHERE profile_id = ? ORDER BY position",
        "reading latency profiles");
    rows.bindAll(p.id);
    while (rows.step())
        p.layers.push_back({rows.text(0), rows.text(1), rows.real(2), rows.optReal(3), rows.optReal(4), rows.optReal(5)});
    return p;
}

int Store::recoverInterrupted()
{
    d_->requireWritable("recovering interrupted runs");
    return d_->recover(/*giveUpIfBusy=*/false);
}

std::string Store::integrityCheck() const
{
    sqlite::Stmt q(d_->db, "PRAGMA integrity_check");
    std::string out;
    while (q.step())
        out += (out.empty() ? "" : "\n") + q.text(0);
    return out;
}

// ---- RunGuard ----

RunGuard::RunGuard(Store& store, const RunStart& start)
    : store_(store), id_(store.beginRun(start)), uncaught_(std::uncaught_exceptions())
{
}

RunGuard::~RunGuard()
{
    if (finished_)
        return;
    try {
        store_.failRun(id_, std::uncaught_exceptions() > uncaught_
                                ? "the run was abandoned by an exception before it finished"
                                : "the run was abandoned before it finished");
    } catch (...) {
        // Best effort in a destructor; the Store marks it interrupted when it closes.
    }
}

void RunGuard::addLayers(const std::vector<LayerResult>& layers)
{
    store_.addLayerResults(id_, layers);
}

void RunGuard::finish(const RunMetrics& metrics)
{
    store_.finishRun(id_, RunState::Done, metrics);
    finished_ = true;
}

void RunGuard::fail(const std::string& error, const RunMetrics& partial)
{
    store_.failRun(id_, error, partial);
    finished_ = true;
}

void RunGuard::cancel(const RunMetrics& partial)
{
    store_.cancelRun(id_, partial);
    finished_ = true;
}

int64_t recordRun(Store& store, const RunStart& start, const std::function<RunMetrics(RunGuard&)>& work)
{
    RunGuard run(store, start);
    try {
        RunMetrics metrics = work(run);
        if (!run.finished())
            run.finish(metrics);
    } catch (const Cancelled&) {
        if (!run.finished())
            run.cancel();
        throw;
    } catch (const std::exception& e) {
        if (!run.finished())
            run.fail(e.what());
        throw;
    }
    return run.id();
}

} // namespace qs
