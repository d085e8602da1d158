// core/store: recording runs and reading them back, the only edits (note, tags),
// immutability (API and triggers), deletion, RunGuard, concurrent reader/writer,
// live writers not taken for dead, comparisons and the default path.
#include "store/compare.h"
#include "store/report.h"
#include "store/schema.h"
#include "store/store.h"
#include "util/error.h"

#include "store_test_util.h"

#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <thread>

using namespace qs;
using namespace qs::test;

class TestStore : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    int counter_ = 0;
    std::string freshPath() { return dir_.filePath(QString("s%1.db").arg(++counter_)).toStdString(); }

private slots:
    void recordsARunAndReadsItBack()
    {
        const std::string path = freshPath();
        Store store = Store::open(path);
        QCOMPARE(store.schemaVersion(), currentSchemaVersion());
        const int64_t model = store.upsertModel(sampleModel("fashion_cnn"));
        const int64_t data = store.upsertDataset(sampleDataset());
        const nlohmann::json config = {{"weights", {{"bits", 4}, {"granularity", "per-channel"}}}, {"acts", 8}};
        const int64_t id = store.beginRun({model, data, RunKind::Quantization, config, {"baseline", "w4"}, "first"});

        RunRecord running = store.run(id);
        QCOMPARE(running.state, RunState::Running);
        QVERIFY(!running.finishedMs);

        std::vector<LayerResult> first = {sampleLayer("conv1", 4, 30.5), sampleLayer("conv2", 4, 25.25)};
        std::vector<LayerResult> second = {sampleLayer("fc1", 8, 41.0)};
        second[0].weightHist.reset();
        second[0].actClip.reset();
        second[0].symmetric.reset();
        store.addLayerResults(id, first);
        store.addLayerResults(id, second);
        store.finishRun(id, RunState::Done, sampleMetrics(0.8912));

        RunRecord r = store.run(id);
        QCOMPARE(r.state, RunState::Done);
        QCOMPARE(r.kind, RunKind::Quantization);
        QCOMPARE(r.modelId, model);
        QCOMPARE(r.modelName, std::string("fashion_cnn"));
        QCOMPARE(r.datasetId, std::optional<int64_t>(data));
        QCOMPARE(r.config, config);
        QCOMPARE(r.tags, (std::vector<std::string>{"baseline", "w4"}));
        QCOMPARE(r.note, std::string("first"));
        QVERIFY(r.finishedMs && *r.finishedMs >= r.startedMs);
        QCOMPARE(r.layerCount, int64_t(3));
        QCOMPARE(r.metrics.top1, std::optional(0.8912));
        QCOMPARE(r.metrics.sizeBits, std::optional(245760.0));
        QCOMPARE(r.metrics.latencyMs, std::optional(1.75));
        QCOMPARE(r.metrics.extra["perplexity"].get<double>(), 12.5);
        QVERIFY(r.machine && !r.machine->hostname.empty() && r.machine->cores > 0);

        std::vector<LayerResult> layers = store.layerResults(id);
        QCOMPARE(layers.size(), std::size_t(3));
        std::vector<LayerResult> expected = first;
        expected.insert(expected.end(), second.begin(), second.end());
        for (std::size_t i = 0; i < layers.size(); ++i) {
            // Compare through the JSON form: every field, histograms included.
            expected[i].position = int(i);
            QCOMPARE(QString::fromStdString(layerToJson(layers[i]).dump()),
                     QString::fromStdString(layerToJson(expected[i]).dump()));
        }
        QCOMPARE(layers[0].weightHist->counts[2], uint64_t(1) << 20);
        QVERIFY(!layers[2].weightHist && !layers[2].actClip && !layers[2].symmetric);

        // Independently of Store: WAL mode, the application id, the rows.
        RawDb raw(QString::fromStdString(path), true);
        QCOMPARE(raw.query("PRAGMA journal_mode"), QString("wal"));
        QCOMPARE(raw.integer("PRAGMA application_id"), int64_t(0x51534442));
        QCOMPARE(raw.integer("SELECT count(*) FROM layer_results WHERE run_id = " + std::to_string(id)), int64_t(3));
        QCOMPARE(raw.query("SELECT state, top1 FROM runs"), QString("done|0.8912"));
    }

    void sameContentIsOneModel()
    {
        Store store = Store::open(freshPath());
        ModelRecord m = sampleModel("a", "/first/a.onnx");
        const int64_t id = store.upsertModel(m);
        m.path = "/moved/a.onnx";
        QCOMPARE(store.upsertModel(m), id);
        QCOMPARE(store.model(id)->path, std::string("/moved/a.onnx"));
        QVERIFY(store.upsertModel(sampleModel("b")) != id);
        QCOMPARE(store.models().size(), std::size_t(2));
        QCOMPARE(store.modelByHash(m.hash)->id, id);

        const int64_t ds = store.upsertDataset(sampleDataset("/x"));
        QCOMPARE(store.upsertDataset(sampleDataset("/x")), ds);
        QCOMPARE(store.datasets().size(), std::size_t(1));
    }

    void finishStates_data()
    {
        QTest::addColumn<int>("state");
        QTest::addColumn<QString>("error");
        QTest::newRow("done") << int(RunState::Done) << "";
        QTest::newRow("failed") << int(RunState::Failed) << "onnx: node \"x\" unsupported";
        QTest::newRow("cancelled") << int(RunState::Cancelled) << "cancelled";
    }

    void finishStates()
    {
        QFETCH(int, state);
        QFETCH(QString, error);
        Store store = Store::open(freshPath());
        const int64_t id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Inference});
        RunMetrics partial;
        partial.latencyMs = 3.0;
        switch (RunState(state)) {
        case RunState::Failed: store.failRun(id, error.toStdString(), partial); break;
        case RunState::Cancelled: store.cancelRun(id, partial); break;
        default: store.finishRun(id, RunState::Done, partial); break;
        }
        RunRecord r = store.run(id);
        QCOMPARE(int(r.state), state);
        QCOMPARE(QString::fromStdString(r.error), error);
        QCOMPARE(r.metrics.latencyMs, std::optional(3.0));
        QVERIFY(!r.metrics.top1);
        // Interrupted and Running are not the caller's to set.
        const int64_t other = store.beginRun({r.modelId, {}, RunKind::Inference});
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(other, RunState::Interrupted));
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(other, RunState::Running));
    }

    void finishedRunRejectsChangesThroughTheApi()
    {
        Store store = Store::open(freshPath());
        const int64_t id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Calibration});
        store.addLayerResults(id, {sampleLayer("conv1", 8, 40)});
        store.finishRun(id, RunState::Done, sampleMetrics(0.5));
        const std::string before = runToJson(store.run(id)).dump();
        try {
            store.addLayerResults(id, {sampleLayer("conv2", 8, 40)});
            QFAIL("adding layers to a finished run must throw");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("run " + std::to_string(id) + " is done") != std::string::npos, e.what());
        }
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(id, RunState::Failed, {}, "again"));
        QVERIFY_THROWS_EXCEPTION(Error, store.cancelRun(id));
        QCOMPARE(runToJson(store.run(id)).dump(), before);
        QCOMPARE(store.layerResults(id).size(), std::size_t(1));
    }

    // The database itself refuses edits of a finished run, whoever writes.
    void triggersKeepFinishedRunsImmutable_data()
    {
        QTest::addColumn<QString>("sql");
        QTest::addColumn<bool>("allowed");
        QTest::newRow("metric") << "UPDATE runs SET top1 = 0.1 WHERE id = RUN" << false;
        QTest::newRow("config") << "UPDATE runs SET config = '{}' WHERE id = RUN" << false;
        QTest::newRow("state") << "UPDATE runs SET state = 'running' WHERE id = RUN" << false;
        QTest::newRow("finished") << "UPDATE runs SET finished_ms = 1 WHERE id = RUN" << false;
        QTest::newRow("extra") << "UPDATE runs SET metrics_extra = '{\"a\":1}' WHERE id = RUN" << false;
        QTest::newRow("machine") << "UPDATE runs SET machine_id = NULL WHERE id = RUN" << false;
        QTest::newRow("layer update") << "UPDATE layer_results SET sqnr_db = 0 WHERE run_id = RUN" << false;
        QTest::newRow("layer insert") << "INSERT INTO layer_results(run_id, position, layer) VALUES(RUN, 9, 'new')"
                                      << false;
        QTest::newRow("note") << "UPDATE runs SET note = 'edited' WHERE id = RUN" << true;
        QTest::newRow("tag") << "INSERT INTO run_tags(run_id, tag) VALUES(RUN, 'new')" << true;
    }

    void triggersKeepFinishedRunsImmutable()
    {
        QFETCH(QString, sql);
        QFETCH(bool, allowed);
        const std::string path = freshPath();
        int64_t id;
        {
            Store store = Store::open(path);
            id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Quantization, {{"bits", 4}}});
            store.addLayerResults(id, {sampleLayer("conv1", 4, 20)});
            store.finishRun(id, RunState::Done, sampleMetrics(0.7));
        }
        RawDb raw(QString::fromUtf8(path.c_str()));
        const QString before = raw.query("SELECT * FROM runs") + raw.query("SELECT * FROM layer_results");
        const int rc = raw.exec(sql.replace("RUN", QString::number(id)).toStdString());
        if (allowed) {
            QCOMPARE(rc, SQLITE_OK);
        } else {
            QCOMPARE(rc, SQLITE_CONSTRAINT);
            QVERIFY2(raw.lastError().find("immutable") != std::string::npos ||
                         raw.lastError().find("only be added while") != std::string::npos,
                     raw.lastError().c_str());
            QCOMPARE(raw.query("SELECT * FROM runs") + raw.query("SELECT * FROM layer_results"), before);
        }
    }

    void notesAndTagsAreTheOnlyEdits()
    {
        Store store = Store::open(freshPath());
        const int64_t id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Sensitivity, {}, {"b", "a"}});
        store.finishRun(id, RunState::Done, sampleMetrics(0.6));
        store.setNote(id, "looks good, but, \"check\" conv3");
        store.addTag(id, "c");
        store.addTag(id, "a"); // already there
        store.removeTag(id, "b");
        RunRecord r = store.run(id);
        QCOMPARE(r.note, std::string("looks good, but, \"check\" conv3"));
        QCOMPARE(r.tags, (std::vector<std::string>{"a", "c"}));
        store.setTags(id, {"z"});
        QCOMPARE(store.run(id).tags, std::vector<std::string>{"z"});
        QVERIFY_THROWS_EXCEPTION(Error, store.addTag(id, ""));
        QVERIFY_THROWS_EXCEPTION(Error, store.setNote(id + 100, "no such run"));
    }

    void deletingARunDeletesItsRowsAndNothingElse()
    {
        const std::string path = freshPath();
        Store store = Store::open(path);
        const int64_t model = store.upsertModel(sampleModel("m"));
        const int64_t data = store.upsertDataset(sampleDataset());
        int64_t ids[2];
        for (int i = 0; i < 2; ++i) {
            ids[i] = store.beginRun({model, data, RunKind::Quantization, {{"i", i}}, {"t"}});
            store.addLayerResults(ids[i], {sampleLayer("conv1", 4, 20), sampleLayer("conv2", 4, 21)});
            store.finishRun(ids[i], RunState::Done, sampleMetrics(0.5 + i * 0.1));
            store.addArtifact(ids[i], {0, 0, "/out/m.qdq.onnx", "onnx-qdq", sha256Hex("x"), 1000, 0});
        }
        const std::string keep = runToJson(store.run(ids[1])).dump();
        store.deleteRun(ids[0]);
        QVERIFY(!store.findRun(ids[0]));
        QCOMPARE(runToJson(store.run(ids[1])).dump(), keep);

        RawDb raw(QString::fromUtf8(path.c_str()), true);
        auto count = [&](const std::string& table, int64_t run) {
            return raw.integer("SELECT count(*) FROM " + table + " WHERE run_id = " + std::to_string(run));
        };
        for (const char* table : {"layer_results", "run_tags", "artifacts"}) {
            QCOMPARE(count(table, ids[0]), int64_t(0));
            QVERIFY(count(table, ids[1]) > 0);
        }
        QCOMPARE(raw.integer("SELECT count(*) FROM models"), int64_t(1));
        QCOMPARE(raw.integer("SELECT count(*) FROM datasets"), int64_t(1));
        QCOMPARE(raw.integer("SELECT count(*) FROM machines"), int64_t(1));

        // A run being recorded cannot be deleted from under its writer.
        const int64_t live = store.beginRun({model, {}, RunKind::Inference});
        QVERIFY_THROWS_EXCEPTION(Error, store.deleteRun(live));
        Store other = Store::open(path);
        QVERIFY_THROWS_EXCEPTION(Error, other.deleteRun(live));
        QVERIFY_THROWS_EXCEPTION(Error, store.deleteRun(9999));
    }

    void layerBatchesAreAtomic_data()
    {
        QTest::addColumn<QStringList>("names");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("message");
        QTest::newRow("duplicate of stored") << QStringList{"conv9", "conv1"} << 4 << "\"conv1\" is already recorded";
        QTest::newRow("duplicate in batch") << QStringList{"conv9", "conv9"} << 4 << "\"conv9\" is already recorded";
        QTest::newRow("bits 0") << QStringList{"conv9"} << 0 << "bits must be 1..32";
        QTest::newRow("bits 33") << QStringList{"conv9"} << 33 << "bits must be 1..32";
        QTest::newRow("empty name") << QStringList{"conv9", ""} << 4 << "empty layer name";
    }

    void layerBatchesAreAtomic()
    {
        QFETCH(QStringList, names);
        QFETCH(int, bits);
        QFETCH(QString, message);
        Store store = Store::open(freshPath());
        const int64_t id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Quantization});
        store.addLayerResults(id, {sampleLayer("conv1", 4, 20)});
        std::vector<LayerResult> batch;
        for (const auto& n : names)
            batch.push_back(sampleLayer(n.toStdString(), bits, 10));
        try {
            store.addLayerResults(id, batch);
            QFAIL("expected an error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        QCOMPARE(store.layerResults(id).size(), std::size_t(1)); // nothing of the batch
        store.addLayerResults(id, {sampleLayer("conv2", 4, 20)}); // and the run goes on
        QCOMPARE(store.layerResults(id).back().position, 1);
    }

    void unknownIdsAreErrors()
    {
        Store store = Store::open(freshPath());
        const int64_t model = store.upsertModel(sampleModel("m"));
        QVERIFY_THROWS_EXCEPTION(Error, store.beginRun({model + 1, {}, RunKind::Inference}));
        QVERIFY_THROWS_EXCEPTION(Error, store.beginRun({model, 77, RunKind::Inference}));
        QVERIFY_THROWS_EXCEPTION(Error, store.run(42));
        QVERIFY(!store.findRun(42));
        QVERIFY_THROWS_EXCEPTION(Error, store.addLayerResults(42, {sampleLayer("c", 4, 1)}));
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(42, RunState::Done));
        QCOMPARE(store.runs().size(), std::size_t(0));
    }

    void runGuard_data()
    {
        QTest::addColumn<QString>("scenario");
        QTest::addColumn<int>("state");
        QTest::addColumn<QString>("error");
        QTest::newRow("finished") << "finish" << int(RunState::Done) << "";
        QTest::newRow("exception") << "throw" << int(RunState::Failed) << "abandoned by an exception";
        QTest::newRow("early return") << "return" << int(RunState::Failed) << "abandoned before it finished";
        QTest::newRow("recordRun done") << "record-done" << int(RunState::Done) << "";
        QTest::newRow("recordRun cancelled") << "record-cancel" << int(RunState::Cancelled) << "cancelled";
        QTest::newRow("recordRun error") << "record-error" << int(RunState::Failed) << "bad input";
    }

    void runGuard()
    {
        QFETCH(QString, scenario);
        QFETCH(int, state);
        QFETCH(QString, error);
        Store store = Store::open(freshPath());
        const RunStart start{store.upsertModel(sampleModel("m")), {}, RunKind::Quantization};
        int64_t id = 0;
        if (scenario == "finish" || scenario == "return") {
            RunGuard run(store, start);
            id = run.id();
            run.addLayers({sampleLayer("conv1", 4, 20)});
            if (scenario == "finish")
                run.finish(sampleMetrics(0.9));
        } else if (scenario == "throw") {
            try {
                RunGuard run(store, start);
                id = run.id();
                throw std::runtime_error("boom");
            } catch (const std::runtime_error&) {
            }
        } else {
            try {
                recordRun(store, start, [&](RunGuard& run) {
                    id = run.id();
                    run.addLayers({sampleLayer("conv1", 4, 20)});
                    if (scenario == "record-cancel")
                        throw Cancelled();
                    if (scenario == "record-error")
                        fail("bad input");
                    return sampleMetrics(0.9);
                });
            } catch (const Cancelled&) {
                QCOMPARE(scenario, QString("record-cancel"));
            } catch (const Error&) {
                QCOMPARE(scenario, QString("record-error"));
            }
        }
        RunRecord r = store.run(id);
        QCOMPARE(runStateName(r.state), runStateName(RunState(state)));
        QVERIFY2(QString::fromStdString(r.error).contains(error), r.error.c_str());
        if (state == int(RunState::Done))
            QCOMPARE(r.metrics.top1, std::optional(0.9));
    }

    // Two Stores in one process are two writers: neither takes the other's
    // running run for an interrupted one, nor may write into it.
    void liveWriterIsNotInterrupted()
    {
        const std::string path = freshPath();
        Store writer = Store::open(path);
        const int64_t id = writer.beginRun({writer.upsertModel(sampleModel("m")), {}, RunKind::Sensitivity});
        writer.addLayerResults(id, {sampleLayer("conv1", 8, 30)});
        {
            Store other = Store::open(path);
            QCOMPARE(other.run(id).state, RunState::Running);
            QCOMPARE(other.recoverInterrupted(), 0);
            QVERIFY_THROWS_EXCEPTION(Error, other.addLayerResults(id, {sampleLayer("conv2", 8, 30)}));
            QVERIFY_THROWS_EXCEPTION(Error, other.finishRun(id, RunState::Done));
            Store reader = Store::open(path, {.mode = OpenMode::ReadOnly});
            QCOMPARE(reader.run(id).state, RunState::Running);
        }
        writer.addLayerResults(id, {sampleLayer("conv2", 8, 30)});
        writer.finishRun(id, RunState::Done);
        QCOMPARE(Store::open(path).run(id).state, RunState::Done);
    }

    void closingTheStoreInterruptsItsUnfinishedRuns()
    {
        const std::string path = freshPath();
        int64_t id;
        {
            Store store = Store::open(path);
            id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Inference});
            store.addLayerResults(id, {sampleLayer("conv1", 8, 30)});
        }
        RawDb raw(QString::fromUtf8(path.c_str()), true);
        QCOMPARE(raw.query("SELECT state FROM runs WHERE id = " + std::to_string(id)), QString("interrupted"));
        QCOMPARE(Store::open(path).run(id).layerCount, int64_t(1));
    }

    // WAL: a reader (the GUI) reads while a writer (a job) records, never sees a
    // half-written batch and never waits for the writer.
    void readerReadsWhileWriterWrites()
    {
        const std::string path = freshPath();
        const int64_t model = Store::open(path).upsertModel(sampleModel("m"));
        constexpr int kRuns = 6, kBatches = 8, kBatch = 10;
        std::atomic<bool> writing{true};
        std::exception_ptr writerError;
        std::thread writer([&] {
            try {
                Store store = Store::open(path);
                for (int r = 0; r < kRuns; ++r) {
                    const int64_t id = store.beginRun({model, {}, RunKind::Calibration, {{"run", r}}});
                    for (int b = 0; b < kBatches; ++b) {
                        std::vector<LayerResult> batch;
                        for (int i = 0; i < kBatch; ++i)
                            batch.push_back(sampleLayer("layer" + std::to_string(b * kBatch + i), 8, 30));
                        store.addLayerResults(id, batch);
                        std::this_thread::sleep_for(std::chrono::milliseconds(3));
                    }
                    store.finishRun(id, RunState::Done, sampleMetrics(0.5));
                }
            } catch (...) {
                writerError = std::current_exception();
            }
            writing = false;
        });

        int reads = 0, sawRunning = 0, sawDone = 0;
        QString problem;
        try {
            Store reader = Store::open(path, {.mode = OpenMode::ReadOnly, .busyTimeoutMs = 100});
            while (writing || reads == 0) {
                for (const RunRecord& r : reader.runs()) {
                    const auto layers = reader.layerResults(r.id);
                    if (layers.size() % kBatch != 0 || r.layerCount % kBatch != 0)
                        problem = QString("run %1: a partial batch is visible (%2 layers)").arg(r.id).arg(layers.size());
                    if (r.state == RunState::Running)
                        ++sawRunning;
                    if (r.state == RunState::Done) {
                        ++sawDone;
                        if (r.layerCount != kBatches * kBatch || !r.metrics.top1)
                            problem = QString("run %1 is done but incomplete").arg(r.id);
                    }
                    if (r.state == RunState::Interrupted)
                        problem = QString("run %1 of a live writer reads as interrupted").arg(r.id);
                }
                ++reads;
            }
        } catch (const std::exception& e) {
            problem = QString("reader failed: ") + e.what();
        }
        writer.join();
        if (writerError)
            std::rethrow_exception(writerError);
        QVERIFY2(problem.isEmpty(), qPrintable(problem));
        QVERIFY2(sawRunning > 0, "the reader never saw a run in progress: reads did not overlap writes");
        QVERIFY(sawDone > 0);
        QCOMPARE(Store::open(path).runs().size(), std::size_t(kRuns));
    }

    void filtersRuns()
    {
        Store store = Store::open(freshPath());
        const int64_t a = store.upsertModel(sampleModel("alpha")), b = store.upsertModel(sampleModel("beta"));
        std::vector<int64_t> ids;
        for (int i = 0; i < 5; ++i) {
            const int64_t id = store.beginRun({i < 3 ? a : b, {}, i % 2 ? RunKind::Sensitivity : RunKind::Quantization,
                                               {}, i == 4 ? std::vector<std::string>{"best"} : std::vector<std::string>{}});
            store.finishRun(id, i == 1 ? RunState::Failed : RunState::Done);
            ids.push_back(id);
        }
        auto idsOf = [](const std::vector<RunRecord>& runs) {
            std::vector<int64_t> out;
            for (const auto& r : runs)
                out.push_back(r.id);
            return out;
        };
        QCOMPARE(idsOf(store.runs()), (std::vector<int64_t>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
        QCOMPARE(idsOf(store.runs({.model = "alpha"})), (std::vector<int64_t>{ids[2], ids[1], ids[0]}));
        QCOMPARE(idsOf(store.runs({.model = store.model(b)->hash.substr(0, 10)})), (std::vector<int64_t>{ids[4], ids[3]}));
        QCOMPARE(idsOf(store.runs({.kind = RunKind::Sensitivity})), (std::vector<int64_t>{ids[3], ids[1]}));
        QCOMPARE(idsOf(store.runs({.state = RunState::Failed})), std::vector<int64_t>{ids[1]});
        QCOMPARE(idsOf(store.runs({.tag = "best"})), std::vector<int64_t>{ids[4]});
        QCOMPARE(idsOf(store.runs({.limit = 2})), (std::vector<int64_t>{ids[4], ids[3]}));
        QCOMPARE(store.runs({.model = "gamma"}).size(), std::size_t(0));
    }

    void comparesLayersByNameAcrossModels()
    {
        Store store = Store::open(freshPath());
        const int64_t ma = store.upsertModel(sampleModel("cnn_a")), mb = store.upsertModel(sampleModel("cnn_b"));
        const int64_t a = store.beginRun({ma, {}, RunKind::Quantization, {{"bits", 8}, {"calib", {{"method", "minmax"}}}}});
        store.addLayerResults(a, {sampleLayer("conv1", 8, 40), sampleLayer("conv2", 8, 38), sampleLayer("fc_a", 8, 45)});
        RunMetrics metA = sampleMetrics(0.90);
        store.finishRun(a, RunState::Done, metA);
        const int64_t b = store.beginRun({mb, {}, RunKind::Quantization, {{"bits", 4}, {"calib", {{"method", "minmax"}}}, {"cle", true}}});
        store.addLayerResults(b, {sampleLayer("head", 4, 12), sampleLayer("conv2", 4, 20), sampleLayer("conv1", 4, 22.5)});
        RunMetrics metB = sampleMetrics(0.85);
        metB.sqnrDb.reset();
        metB.extra = {{"perplexity", 14.0}, {"note", "text is not a metric"}};
        store.finishRun(b, RunState::Done, metB);

        RunComparison c = compareRuns(store, a, b);
        QCOMPARE(c.a.id, a);
        QCOMPARE(c.b.id, b);
        QCOMPARE(c.layers.size(), std::size_t(2));
        QCOMPARE(c.layers[0].layer, std::string("conv1")); // in a's order
        QCOMPARE(c.layers[1].layer, std::string("conv2"));
        QCOMPARE(c.layers[0].a.sqnrDb, std::optional(40.0));
        QCOMPARE(c.layers[0].b.sqnrDb, std::optional(22.5));
        QCOMPARE(c.layers[1].b.weightBits, std::optional(4));
        QCOMPARE(c.onlyInA, std::vector<std::string>{"fc_a"});
        QCOMPARE(c.onlyInB, std::vector<std::string>{"head"});

        std::map<std::string, MetricComparison> metrics;
        for (const auto& m : c.metrics)
            metrics[m.name] = m;
        QCOMPARE(metrics.size(), std::size_t(9)); // 7 standard + perplexity + calibration_batches
        QVERIFY(qFuzzyCompare(*metrics["top1"].delta(), 0.85 - 0.90));
        QVERIFY(!metrics["sqnr_db"].delta());
        QCOMPARE(metrics["sqnr_db"].a, std::optional(31.5));
        QCOMPARE(*metrics["perplexity"].delta(), 1.5);
        QVERIFY(!metrics["calibration_batches"].b);
        QVERIFY(!metrics.count("note"));

        std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> config;
        for (const auto& d : c.config)
            config[d.key] = {d.a, d.b};
        QCOMPARE(config.size(), std::size_t(2));
        QCOMPARE(config["/bits"].first.get<int>(), 8);
        QCOMPARE(config["/bits"].second.get<int>(), 4);
        QVERIFY(config["/cle"].first.is_null() && config["/cle"].second.get<bool>());

        const nlohmann::json j = comparisonToJson(c);
        for (const char* key : {"a", "b", "metrics_delta", "layers", "unmatched"})
            QVERIFY2(j.contains(key), key);
        QCOMPARE(j["layers"][0]["delta"]["sqnr_db"].get<double>(), 22.5 - 40.0);
        QCOMPARE(j["layers"][0]["delta"]["size_bits"].get<double>(), double(4000 - 8000));

        QVERIFY_THROWS_EXCEPTION(Error, compareRuns(store, a, 999));
    }

    // Latency of simulated against INT8 kernels (or at another batch), and accuracy on
    // evaluation sets of other sizes, are compared but never called better or worse.
    void marksMetricsMeasuredDifferently()
    {
        Store store = Store::open(freshPath());
        const int64_t m = store.upsertModel(sampleModel("cnn"));
        auto run = [&](bool int8, int batch, int samples) {
            const int64_t id = store.beginRun({m, {}, RunKind::Quantization,
                {{"int8", int8}, {"batch", batch}, {"evaluation", {{"samples", samples}}}}});
            RunMetrics met = sampleMetrics(0.9);
            met.latencyMs = int8 ? 0.86 : 7.3;
            store.finishRun(id, RunState::Done, met);
            return id;
        };
        const int64_t sim = run(false, 32, 1000), int8 = run(true, 32, 1000), int8b8 = run(true, 8, 256),
                      sim2 = run(false, 32, 1000);
        auto note = [&](int64_t a, int64_t b, const std::string& metric) {
            for (const auto& mc : compareRuns(store, a, b).metrics)
                if (mc.name == metric)
                    return mc.incomparable;
            return std::string("(absent)");
        };
        QCOMPARE(note(sim, int8, "latency_ms"), std::string("latency of simulated at batch 32 against INT8 kernels at batch 32"));
        QCOMPARE(note(int8, int8b8, "latency_ms"), std::string("latency of INT8 kernels at batch 32 against INT8 kernels at batch 8"));
        QCOMPARE(note(sim, sim2, "latency_ms"), std::string());
        QCOMPARE(note(sim, int8, "top1"), std::string());
        QCOMPARE(note(int8, int8b8, "top1"), std::string("evaluated on 1000 against 256 samples"));
        QCOMPARE(note(int8, int8b8, "sqnr_db"), std::string());
        const nlohmann::json j = comparisonToJson(compareRuns(store, sim, int8));
        QVERIFY(j["metrics_delta"]["latency_ms"].contains("incomparable"));
        QVERIFY(!j["metrics_delta"]["sqnr_db"].contains("incomparable"));
    }

    // A layer one run states and the other leaves to "default" is compared against that
    // default: only settings that really differ are listed.
    void configDiffResolvesLayerDefaults()
    {
        Store store = Store::open(freshPath());
        const int64_t m = store.upsertModel(sampleModel("cnn"));
        const nlohmann::json w8 = {{"bits", 8}, {"granularity", "channel"}, {"symmetric", true}};
        const nlohmann::json a8 = {{"bits", 8}, {"granularity", "tensor"}, {"symmetric", false}};
        const nlohmann::json base = {{"default", {{"weight", w8}, {"activation", a8}}}, {"layers", nlohmann::json::object()}};
        nlohmann::json edited = base;
        nlohmann::json w4 = w8;
        w4["bits"] = 4;
        edited["layers"]["conv1"] = {{"weight", w4}, {"activation", a8}}; // bits differ
        edited["layers"]["conv2"] = {{"weight", w8}, {"activation", a8}}; // the default, stated
        const int64_t a = store.beginRun({m, {}, RunKind::Quantization, base});
        store.finishRun(a, RunState::Done, sampleMetrics(0.9));
        const int64_t b = store.beginRun({m, {}, RunKind::Quantization, edited});
        store.finishRun(b, RunState::Done, sampleMetrics(0.8));
        const RunComparison c = compareRuns(store, a, b);
        QCOMPARE(c.config.size(), std::size_t(1));
        QCOMPARE(c.config[0].key, std::string("/layers/conv1/weight/bits"));
        QCOMPARE(c.config[0].a.get<int>(), 8);
        QCOMPARE(c.config[0].b.get<int>(), 4);
    }

    void defaultStorePath_data()
    {
        QTest::addColumn<QByteArray>("xdg");
        QTest::addColumn<QByteArray>("home");
        QTest::addColumn<QString>("expected");
        QTest::newRow("xdg") << QByteArray("/xdg/data") << QByteArray("/home/u") << "/xdg/data/QuantStudio/studio.db";
        QTest::newRow("no xdg") << QByteArray() << QByteArray("/home/u") << "/home/u/.local/share/QuantStudio/studio.db";
        QTest::newRow("relative xdg is ignored") << QByteArray("rel/dir") << QByteArray("/home/u")
                                                 << "/home/u/.local/share/QuantStudio/studio.db";
    }

    void defaultStorePath()
    {
        QFETCH(QByteArray, xdg);
        QFETCH(QByteArray, home);
        QFETCH(QString, expected);
        const QByteArray oldXdg = qgetenv("XDG_DATA_HOME"), oldHome = qgetenv("HOME");
        xdg.isNull() ? qunsetenv("XDG_DATA_HOME") : qputenv("XDG_DATA_HOME", xdg);
        qputenv("HOME", home);
        const std::string got = qs::defaultStorePath();
        oldXdg.isNull() ? qunsetenv("XDG_DATA_HOME") : qputenv("XDG_DATA_HOME", oldXdg);
        qputenv("HOME", oldHome);
        QCOMPARE(QString::fromStdString(got), expected);
    }

    void createsTheFolderOfANewStore()
    {
        const std::string path = dir_.filePath("nested/deeper/studio.db").toStdString();
        Store::open(path).upsertModel(sampleModel("m"));
        QVERIFY(QFile::exists(QString::fromStdString(path)));
        QVERIFY_THROWS_EXCEPTION(Error, Store::open(dir_.filePath("nope/x.db").toStdString(), {.createIfMissing = false}));
        QVERIFY(!QFile::exists(dir_.filePath("nope")));
    }
};

QTEST_GUILESS_MAIN(TestStore)
#include "test_store.moc"
