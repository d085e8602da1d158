// Imports every model.onnx of ONNX's own conformance data (Debian's libonnx-testdata):
// each imports or fails with an error that names the file. Never a crash.
#include "graph/onnx_import.h"
#include "util/error.h"

#include <QtTest>

#include <filesystem>

using namespace qs;

class TestConformanceImport : public QObject {
    Q_OBJECT

private slots:
    void importsEveryModel()
    {
        namespace fs = std::filesystem;
        if (!fs::exists(QS_TESTDATA_DIR))
            QFAIL("libonnx-testdata is not installed (tools/setup.sh installs it)");
        int ok = 0, failed = 0, unchecked = 0;
        std::vector<std::string> unclear;
        for (const auto& entry : fs::recursive_directory_iterator(QS_TESTDATA_DIR)) {
            if (entry.path().filename() != "model.onnx")
                continue;
            const std::string path = entry.path().string();
            try {
                Graph g = importOnnx(path);
                QVERIFY(!g.nodes.empty() || !g.outputs.empty());
                ++ok;
                unchecked += g.warnings.empty() ? 0 : 1;
            } catch (const Error& e) {
                ++failed;
                std::string message = e.what();
                if (message.rfind(path, 0) != 0)
                    unclear.push_back(message);
                else
                    qInfo("refused: %s", message.c_str());
            }
        }
        qInfo("conformance models: %d imported (%d without ONNX shape inference: checker warnings), "
              "%d refused with an error, %d in all", ok, unchecked, failed, ok + failed);
        for (const auto& m : unclear)
            qWarning("error without the file name: %s", m.c_str());
        QVERIFY(unclear.empty());
        QVERIFY2(ok + failed > 500, "expected the whole conformance set");
        QVERIFY2(ok >= (ok + failed) * 95 / 100, "fewer than 95% of the conformance models import");
    }
};

QTEST_APPLESS_MAIN(TestConformanceImport)
#include "test_conformance_import.moc"
