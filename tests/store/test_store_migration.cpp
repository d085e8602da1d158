// Schema migrations: a store of every earlier version, with data, opens at the
// current version with its data intact; the shipped v1 is frozen here and must
// not change; a failing migration leaves the file as it was.
#include "store/histogram_blob.h"
#include "store/report.h"
#include "store/schema.h"
#include "store/store.h"
#include "util/error.h"

#include "store_test_util.h"

#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::test;

namespace {

// Schema version 1 exactly as shipped. Do not edit: add a migration instead.
const char* kFrozenV1 = R"sql(
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

// The step from v1 to v2 exactly as shipped. Do not edit either.
const char* kFrozenV2Step = R"sql(
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

std::string hexBlob(const std::vector<uint8_t>& bytes)
{
    static const char* digits = "0123456789abcdef";
    std::string out = "x'";
    for (uint8_t b : bytes)
        out += {digits[b >> 4], digits[b & 15]};
    return out + "'";
}

// Rows a v1 studio would have written: a finished run with layers, tags and an
// artifact, and a run left `running` by a writer that no longer exists.
std::string v1Rows()
{
    const StoredHistogram h{{-1.0f, 0.0f, 1.0f}, {10, 20}};
    return R"sql(
INSERT INTO models VALUES(1, 'abc123', 'old_cnn', '/m/old.onnx', 4096, '{"Conv":2}', 1000, 1700000000000);
INSERT INTO datasets VALUES(1, 'idx', '/d/t10k', 10000, 'def456', 1700000000001);
INSERT INTO runs(id, model_id, dataset_id, kind, config, state, started_ms, finished_ms, top1, sqnr_db, size_bits,
                 metrics_extra, note, writer_pid, writer_host, writer_slot)
  VALUES(1, 1, 1, 'quantization', '{"bits":4}', 'running', 1700000000100, NULL, NULL, NULL, NULL, '{}', 'old note',
         4242, 'oldhost', 777);
INSERT INTO layer_results(run_id, position, layer, op, weight_bits, act_bits, granularity, sqnr_db, sensitivity,
                          size_bits, weight_hist, weight_clip_lo, weight_clip_hi)
  VALUES(1, 0, 'conv1', 'Conv', 4, 8, 'per-channel', 21.5, 3.25, 4000, )sql" +
           hexBlob(encodeHistogram(h)) + R"sql(, -0.5, 0.5);
UPDATE runs SET state = 'done', finished_ms = 1700000000200, top1 = 0.875, sqnr_db = 30.5, size_bits = 32000
  WHERE id = 1;
INSERT INTO run_tags VALUES(1, 'legacy');
INSERT INTO artifacts VALUES(1, 1, '/out/old.onnx', 'onnx-qdq', 'aaa', 5000, 1700000000300);
INSERT INTO runs(id, model_id, kind, config, state, started_ms, writer_pid, writer_host, writer_slot)
  VALUES(2, 1, 'sensitivity', '{}', 'running', 1700000000400, 4243, 'oldhost', 778);
)sql";
}

QString schemaOf(RawDb& db)
{
    return db.query("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name");
}

} // namespace

class TestStoreMigration : public QObject {
    Q_OBJECT

private slots:
    void shippedV1IsFrozen()
    {
        QTemporaryDir dir;
        const QString shipped = dir.filePath("shipped.db"), frozen = dir.filePath("frozen.db");
        createStoreAtVersion(shipped.toStdString(), 1);
        RawDb f(frozen);
        QCOMPARE(f.exec(kFrozenV1), SQLITE_OK);
        RawDb s(shipped, true);
        QCOMPARE(s.integer("PRAGMA user_version"), int64_t(1));
        QCOMPARE(schemaOf(s), schemaOf(f));
    }

    void shippedV2IsFrozen()
    {
        QTemporaryDir dir;
        const QString shipped = dir.filePath("shipped.db"), frozen = dir.filePath("frozen.db");
        createStoreAtVersion(shipped.toStdString(), 2);
        RawDb f(frozen);
        QCOMPARE(f.exec(std::string(kFrozenV1) + kFrozenV2Step), SQLITE_OK);
        RawDb s(shipped, true);
        QCOMPARE(s.integer("PRAGMA user_version"), int64_t(2));
        QCOMPARE(schemaOf(s), schemaOf(f));
    }

    void migratesFromEveryEarlierVersion_data()
    {
        QTest::addColumn<int>("version");
        for (int v = 0; v < currentSchemaVersion(); ++v)
            QTest::newRow(qPrintable(QString("v%1").arg(v))) << v;
    }

    void migratesFromEveryEarlierVersion()
    {
        QFETCH(int, version);
        QTemporaryDir dir;
        const QString qpath = dir.filePath("old.db");
        const std::string path = qpath.toStdString();
        createStoreAtVersion(path, version);
        const bool withData = version >= 1;
        if (withData) {
            RawDb raw(qpath);
            QCOMPARE(raw.exec(v1Rows()), SQLITE_OK);
        }

        {
            Store store = Store::open(path);
            QCOMPARE(store.schemaVersion(), currentSchemaVersion());
            if (withData) {
                RunRecord done = store.run(1);
                QCOMPARE(done.state, RunState::Done);
                QCOMPARE(done.modelName, std::string("old_cnn"));
                QCOMPARE(done.metrics.top1, std::optional(0.875));
                QCOMPARE(done.metrics.sizeBits, std::optional(32000.0));
                QCOMPARE(done.tags, std::vector<std::string>{"legacy"});
                QCOMPARE(done.note, std::string("old note"));
                QVERIFY(!done.machine); // recorded before machines existed
                auto layers = store.layerResults(1);
                QCOMPARE(layers.size(), std::size_t(1));
                QCOMPARE(layers[0].weightHist->counts, (std::vector<uint64_t>{10, 20}));
                QCOMPARE(layers[0].weightClip->hi, 0.5);
                QCOMPARE(store.artifacts(1).size(), std::size_t(1));
                // The dead v1 writer's run is interrupted now.
                QCOMPARE(store.run(2).state, RunState::Interrupted);
                QVERIFY(store.run(2).error.find("pid 4243 on oldhost") != std::string::npos);
            }
            // The new version's feature works.
            const int64_t model = store.upsertModel(sampleModel("new"));
            const int64_t id = store.beginRun({model, {}, RunKind::Inference});
            store.finishRun(id, RunState::Done);
            QVERIFY(store.run(id).machine);
            // v3: latency profiles, cached per machine.
            LatencyProfile p;
            p.modelHash = "abc123";
            p.isa = "avx2";
            p.repeats = 3;
            p.layers = {{"conv1", "Conv", 1.5, 0.5, 0.125, std::nullopt}};
            const int64_t profile = store.addLatencyProfile(p);
            auto back = store.latestLatencyProfile("abc123", 1, 0);
            QVERIFY(back && back->id == profile);
            QCOMPARE(back->layers, p.layers);
        }
        RawDb raw(qpath, true);
        QCOMPARE(raw.integer("PRAGMA user_version"), int64_t(currentSchemaVersion()));
        QCOMPARE(raw.query("PRAGMA integrity_check"), QString("ok"));
        QCOMPARE(raw.query("PRAGMA foreign_key_check"), QString(""));
        if (withData)
            QCOMPARE(raw.query("SELECT state FROM runs WHERE id = 2"), QString("interrupted"));
        // A fresh store has exactly the migrated schema.
        createStoreAtVersion(dir.filePath("fresh.db").toStdString(), currentSchemaVersion());
        RawDb fresh(dir.filePath("fresh.db"), true);
        QCOMPARE(schemaOf(raw), schemaOf(fresh));
    }

    // A migration step fails (here: a table in the way): the whole upgrade rolls
    // back and the file stays at v1 with its data.
    void failedMigrationChangesNothing()
    {
        QTemporaryDir dir;
        const QString qpath = dir.filePath("old.db");
        const std::string path = qpath.toStdString();
        createStoreAtVersion(path, 1);
        {
            RawDb raw(qpath);
            QCOMPARE(raw.exec(v1Rows() + "CREATE TABLE machines(mine TEXT);"), SQLITE_OK);
        }
        QString before;
        {
            RawDb raw(qpath, true);
            before = schemaOf(raw) + raw.query("SELECT * FROM runs");
        }
        try {
            Store::open(path);
            QFAIL("expected the migration to fail");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).startsWith(qpath + ": "), e.what());
            QVERIFY2(QString(e.what()).contains("from version 1 to 2"), e.what());
        }
        RawDb raw(qpath, true);
        QCOMPARE(raw.integer("PRAGMA user_version"), int64_t(1));
        QCOMPARE(schemaOf(raw) + raw.query("SELECT * FROM runs"), before);
    }

    // Reading never upgrades: an old store opened read-only is refused, untouched.
    void readOnlyOpenDoesNotUpgrade()
    {
        QTemporaryDir dir;
        const QString qpath = dir.filePath("old.db");
        createStoreAtVersion(qpath.toStdString(), 1);
        const QByteArray before = fileHash(qpath);
        try {
            Store::open(qpath.toStdString(), {.mode = OpenMode::ReadOnly});
            QFAIL("expected an error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(
                         QString("schema version 1 and needs upgrading to %1").arg(currentSchemaVersion())),
                e.what());
        }
        QCOMPARE(fileHash(qpath), before);
        RawDb raw(qpath, true);
        QCOMPARE(raw.integer("PRAGMA user_version"), int64_t(1));
    }

    void migrationsAreNumberedInOrder()
    {
        QCOMPARE(int(migrations().size()), currentSchemaVersion());
        for (std::size_t i = 0; i < migrations().size(); ++i)
            QCOMPARE(migrations()[i].toVersion, int(i + 1));
        QVERIFY_THROWS_EXCEPTION(Error, createStoreAtVersion(QTemporaryDir().filePath("x.db").toStdString(), 99));
    }
};

QTEST_GUILESS_MAIN(TestStoreMigration)
#include "test_store_migration.moc"
