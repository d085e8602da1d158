// The schema history. Never edit a shipped migration: add a new one. The tests
// keep a frozen copy of every shipped version and migrate it to the current one.
#include "store/schema.h"

#include "store/sqlite.h"
#include "util/error.h"

#include <filesystem>

namespace qs {

namespace {

// v1: models, datasets, runs with metrics, tags, per-layer results, artifacts.
// Triggers make a finished run immutable except for its note (tags live in their
// own table) and forbid touching layer rows once their run has ended.
const char* kSchemaV1 = R"sql(
CREATE TABLE models(
  id          INTEGER PRIMARY KEY,
  hash        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  path        TEXT NOT NULL,
  size_bytes  INTEGER NOT NULL,
  op_counts   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(op_counts)),
  params      INTEGER NOT NULL DEFAULT 0,
  imported_ms INTEGER NOT NULL
);
CREATE TABLE datasets(
  id       INTEGER PRIMARY KEY,
  kind     TEXT NOT NULL,
  path     TEXT NOT NULL,
  count    INTEGER NOT NULL,
  hash     TEXT NOT NULL,
  added_ms INTEGER NOT NULL,
  UNIQUE(kind, hash)
);
CREATE TABLE runs(
  id             INTEGER PRIMARY KEY,
  model_id       INTEGER NOT NULL REFERENCES models(id) ON DELETE RESTRICT,
  dataset_id     INTEGER REFERENCES datasets(id) ON DELETE RESTRICT,
  kind           TEXT NOT NULL CHECK (kind IN ('inference','calibration','sensitivity','quantization','mixed-precision-search')),
  config         TEXT NOT NULL CHECK (json_valid(config)),
  state          TEXT NOT NULL CHECK (state IN ('running','done','failed','cancelled','interrupted')),
  started_ms     INTEGER NOT NULL,
  finished_ms    INTEGER,
  error          TEXT NOT NULL DEFAULT '',
  top1           REAL,
  sqnr_db        REAL,
  cosine         REAL,
  top1_agreement REAL,
  kl             REAL,
  size_bits      REAL,
  latency_ms     REAL,
  metrics_extra  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics_extra)),
  note           TEXT NOT NULL DEFAULT '',
  writer_pid     INTEGER,
  writer_host    TEXT NOT NULL DEFAULT '',
  writer_slot    INTEGER
);
CREATE INDEX runs_model ON runs(model_id);
CREATE INDEX runs_running ON runs(state) WHERE state = 'running';
CREATE TABLE run_tags(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tag    TEXT NOT NULL CHECK (tag <> ''),
  PRIMARY KEY(run_id, tag)
) WITHOUT ROWID;
CREATE TABLE layer_results(
  id                 INTEGER PRIMARY KEY,
  run_id             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  position           INTEGER NOT NULL,
  layer              TEXT NOT NULL CHECK (layer <> ''),
  op                 TEXT NOT NULL DEFAULT '',
  weight_bits        INTEGER,
  act_bits           INTEGER,
  granularity        TEXT NOT NULL DEFAULT '',
  symmetric          INTEGER,
  scales             TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scales)),
  sqnr_db            REAL,
  sensitivity        REAL,
  sensitivity_detail TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(sensitivity_detail)),
  size_bits          INTEGER,
  weight_hist        BLOB,
  act_hist           BLOB,
  weight_clip_lo     REAL,
  weight_clip_hi     REAL,
  act_clip_lo        REAL,
  act_clip_hi        REAL,
  extra              TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
  UNIQUE(run_id, layer)
);
CREATE TABLE artifacts(
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  path       TEXT NOT NULL,
  format     TEXT NOT NULL,
  hash       TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX artifacts_run ON artifacts(run_id);

CREATE TRIGGER runs_immutable BEFORE UPDATE ON runs
WHEN NEW.id IS NOT OLD.id OR NEW.model_id IS NOT OLD.model_id OR NEW.dataset_id IS NOT OLD.dataset_id
  OR NEW.kind IS NOT OLD.kind OR NEW.config IS NOT OLD.config OR NEW.started_ms IS NOT OLD.started_ms
  OR NEW.writer_pid IS NOT OLD.writer_pid OR NEW.writer_host IS NOT OLD.writer_host
  OR NEW.writer_slot IS NOT OLD.writer_slot
  OR (OLD.state <> 'running' AND (NEW.state IS NOT OLD.state OR NEW.finished_ms IS NOT OLD.finished_ms
      OR NEW.error IS NOT OLD.error OR NEW.top1 IS NOT OLD.top1 OR NEW.sqnr_db IS NOT OLD.sqnr_db
      OR NEW.cosine IS NOT OLD.cosine OR NEW.top1_agreement IS NOT OLD.top1_agreement OR NEW.kl IS NOT OLD.kl
      OR NEW.size_bits IS NOT OLD.size_bits OR NEW.latency_ms IS NOT OLD.latency_ms
      OR NEW.metrics_extra IS NOT OLD.metrics_extra))
BEGIN
  SELECT RAISE(ABORT, 'stored runs are immutable: only the note and tags can change');
END;
CREATE TRIGGER layer_results_append_only BEFORE INSERT ON layer_results
WHEN (SELECT state FROM runs WHERE id = NEW.run_id) IS NOT 'running'
BEGIN
  SELECT RAISE(ABORT, 'layer results can only be added while their run is running');
END;
CREATE TRIGGER layer_results_immutable BEFORE UPDATE ON layer_results
BEGIN
  SELECT RAISE(ABORT, 'stored layer results are immutable');
END;
)sql";

// v2: the machine a run was recorded on, so that latencies compare like with like.
const char* kSchemaV2 = R"sql(
CREATE TABLE machines(
  id           INTEGER PRIMARY KEY,
  hostname     TEXT NOT NULL,
  os           TEXT NOT NULL,
  cpu          TEXT NOT NULL,
  cores        INTEGER NOT NULL,
  memory_bytes INTEGER NOT NULL,
  UNIQUE(hostname, os, cpu, cores, memory_bytes)
);
ALTER TABLE runs ADD COLUMN machine_id INTEGER REFERENCES machines(id) ON DELETE RESTRICT;
DROP TRIGGER runs_immutable;
CREATE TRIGGER runs_immutable BEFORE UPDATE ON runs
WHEN NEW.id IS NOT OLD.id OR NEW.model_id IS NOT OLD.model_id OR NEW.dataset_id IS NOT OLD.dataset_id
  OR NEW.kind IS NOT OLD.kind OR NEW.config IS NOT OLD.config OR NEW.started_ms IS NOT OLD.started_ms
  OR NEW.writer_pid IS NOT OLD.writer_pid OR NEW.writer_host IS NOT OLD.writer_host
  OR NEW.writer_slot IS NOT OLD.writer_slot OR NEW.machine_id IS NOT OLD.machine_id
  OR (OLD.state <> 'running' AND (NEW.state IS NOT OLD.state OR NEW.finished_ms IS NOT OLD.finished_ms
      OR NEW.error IS NOT OLD.error OR NEW.top1 IS NOT OLD.top1 OR NEW.sqnr_db IS NOT OLD.sqnr_db
      OR NEW.cosine IS NOT OLD.cosine OR NEW.top1_agreement IS NOT OLD.top1_agreement OR NEW.kl IS NOT OLD.kl
      OR NEW.size_bits IS NOT OLD.size_bits OR NEW.latency_ms IS NOT OLD.latency_ms
      OR NEW.metrics_extra IS NOT OLD.metrics_extra))
BEGIN
  SELECT RAISE(ABORT, 'stored runs are immutable: only the note and tags can change');
END;
)sql";

// v3: measured per-layer latency tables (FP32, INT8 and the cost of crossing between
// them), cached per machine and model; a re-measurement adds a profile, the newest wins.
const char* kSchemaV3 = R"sql(
CREATE TABLE latency_profiles(
  id            INTEGER PRIMARY KEY,
  machine_id    INTEGER NOT NULL REFERENCES machines(id) ON DELETE RESTRICT,
  model_hash    TEXT NOT NULL CHECK (model_hash <> ''),
  batch         INTEGER NOT NULL CHECK (batch > 0),
  threads       INTEGER NOT NULL CHECK (threads >= 0),
  isa           TEXT NOT NULL,
  cpu_flags     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(cpu_flags)),
  warmup        INTEGER NOT NULL,
  repeats       INTEGER NOT NULL CHECK (repeats > 0),
  fp32_total_ms REAL NOT NULL,
  int8_total_ms REAL NOT NULL,
  other_ms      REAL NOT NULL,
  measured_ms   INTEGER NOT NULL
);
CREATE INDEX latency_profiles_lookup ON latency_profiles(machine_id, model_hash, batch, threads);
CREATE TABLE layer_latencies(
  profile_id    INTEGER NOT NULL REFERENCES latency_profiles(id) ON DELETE CASCADE,
  position      INTEGER NOT NULL,
  layer         TEXT NOT NULL CHECK (layer <> ''),
  op            TEXT NOT NULL DEFAULT '',
  fp32_ms       REAL NOT NULL,
  int8_ms       REAL,
  quantize_ms   REAL,
  dequantize_ms REAL,
  PRIMARY KEY(profile_id, position)
) WITHOUT ROWID;
)sql";

int userVersion(sqlite::Db& db)
{
    sqlite::Stmt q(db, "PRAGMA user_version");
    q.step();
    return int(q.int64(0));
}

} // namespace

const std::vector<Migration>& migrations()
{
    static const std::vector<Migration> all = {
        {1, "initial schema", kSchemaV1},
        {2, "machine info per run", kSchemaV2},
        {3, "measured layer latencies per machine", kSchemaV3},
    };
    return all;
}

int currentSchemaVersion()
{
    return int(migrations().size());
}

void migrateSchema(sqlite::Db& db, int toVersion)
{
    if (toVersion < 0 || toVersion > currentSchemaVersion())
        fail(db.path(), ": cannot migrate to schema version ", toVersion, " (this program knows 0..",
             currentSchemaVersion(), ")");
    sqlite::Transaction tx(db, "upgrading the schema");
    // Read inside the transaction: another process may have migrated meanwhile.
    const int from = userVersion(db);
    if (from > toVersion)
        fail(db.path(), ": schema version ", from, " is newer than ", toVersion);
    if (from == toVersion)
        return;
    if (from == 0)
        db.exec("PRAGMA application_id = " + std::to_string(kStoreApplicationId), "upgrading the schema");
    for (int v = from + 1; v <= toVersion; ++v) {
        const Migration& m = migrations()[std::size_t(v - 1)];
        db.exec(m.sql, str("upgrading the schema from version ", v - 1, " to ", v, " (", m.summary, ")"));
    }
    db.exec("PRAGMA user_version = " + std::to_string(toVersion), "upgrading the schema");
    // Keep foreign keys honest: a migration that rebuilt a table must not leave
    // dangling references behind.
    sqlite::Stmt fk(db, "PRAGMA foreign_key_check");
    if (fk.step())
        fail(db.path(), ": upgrading the schema to version ", toVersion, " left a dangling reference in table ",
             quoted(fk.text(0)));
    tx.commit();
}

void createStoreAtVersion(const std::string& path, int version)
{
    if (version < 0 || version > currentSchemaVersion())
        fail(path, ": no schema version ", version, " (this program knows 0..", currentSchemaVersion(), ")");
    if (std::filesystem::exists(path))
        fail(path, ": already exists");
    sqlite::Db db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    db.exec("PRAGMA journal_mode = WAL", "enabling WAL");
    migrateSchema(db, version);
}

} // namespace qs
