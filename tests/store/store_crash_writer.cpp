// Test helper for test_store_crash: records a run into the store given on the
// command line and never finishes it, so that the test can SIGKILL it mid-way.
//   store_crash_writer DB loop   add batches of layer rows as fast as it can
//   store_crash_writer DB hold   add one batch, then wait to be killed
// Prints "run ID" once the run exists, then "batch N" after each committed batch.
#include "store/store.h"
#include "util/hash.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv)
{
    if (argc != 3)
        return 2;
    const std::string mode = argv[2];
    try {
        qs::Store store = qs::Store::open(argv[1]);
        qs::ModelRecord model;
        model.hash = qs::sha256Hex("crash-model");
        model.name = "crash_model";
        model.path = "/models/crash.onnx";
        const int64_t modelId = store.upsertModel(model);
        const int64_t id = store.beginRun({modelId, {}, qs::RunKind::Calibration, {{"mode", mode}}});
        std::printf("run %lld\n", static_cast<long long>(id));
        std::fflush(stdout);
        for (int batch = 0;; ++batch) {
            std::vector<qs::LayerResult> layers;
            // Big enough batches that a kill often lands inside a transaction.
            for (int i = 0; i < 50; ++i) {
                qs::LayerResult l;
                l.layer = "layer_" + std::to_string(batch) + "_" + std::to_string(i);
                l.weightBits = 4;
                l.sqnrDb = 20.0 + i;
                qs::StoredHistogram h;
                for (int e = 0; e <= 256; ++e)
                    h.edges.push_back(float(e));
                h.counts.assign(256, uint64_t(batch * 1000 + i));
                l.actHist = h;
                layers.push_back(std::move(l));
            }
            if (mode == "loop" || batch == 0) {
                store.addLayerResults(id, layers);
                std::printf("batch %d\n", batch);
                std::fflush(stdout);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "store_crash_writer: %s\n", e.what());
        return 1;
    }
}
