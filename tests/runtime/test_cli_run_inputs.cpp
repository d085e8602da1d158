// `quantstudio-cli run` on models with several inputs: NPZ and folder data feed every
// input, --input-value fills a scalar, and --save-outputs writes every output of every
// sample, checked against naive loops and against ONNX Runtime. Add a model to
// tests/support/multi_input_models.h and a slot here.
#include "data/npy.h"
#include "data/npz.h"

#include "support/cli_runner.h"
#include "support/multi_input_models.h"

#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>

using namespace qs;
using qs::test::cli;

namespace {

constexpr int64_t kN = 5;

Tensor xValues()
{
    std::vector<float> v;
    for (int i = 0; i < kN * 4; ++i)
        v.push_back(std::sin(0.7f * float(i)) * 3);
    return Tensor::fromVector<float>({kN, 4}, v);
}

Tensor maskValues()
{
    std::vector<int64_t> v;
    for (int i = 0; i < kN; ++i)
        for (int j = 0; j < 4; ++j)
            v.push_back(j <= i % 4 ? 1 : 0);
    return Tensor::fromVector<int64_t>({kN, 4}, v);
}

float maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b)
{
    if (a.size() != b.size())
        return INFINITY;
    float m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

const Tensor& named(const NamedTensors& t, const std::string& name)
{
    for (const auto& [n, v] : t)
        if (n == name)
            return v;
    qFatal("no array %s", name.c_str());
}

} // namespace

class TestCliRunInputs : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString masked_, state_;

    QString path(const QString& name) const { return dir_.filePath(name); }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        masked_ = path("masked.onnx");
        test::maskedMatMulModel().save(masked_.toStdString());
        state_ = path("state.onnx");
        test::stateModel().save(state_.toStdString());
        writeNpz({{"x", xValues()}, {"attention_mask", maskValues()}}, path("data.npz").toStdString());
        QDir().mkpath(path("folder"));
        writeNpy(xValues(), path("folder/x.npy").toStdString());
        writeNpy(maskValues(), path("folder/attention_mask.npy").toStdString());
    }

    // y = x * mask and z = y @ W for every sample, batches of 2 (a tail of 1).
    void npzAndFolderEqualNaive_data()
    {
        QTest::addColumn<QString>("data");
        QTest::newRow("npz") << "data.npz";
        QTest::newRow("folder") << "folder";
    }

    void npzAndFolderEqualNaive()
    {
        QFETCH(QString, data);
        const QString out = path("out_" + data + ".npz");
        const auto r = cli({"run", masked_, "--data", path(data), "--batch", "2", "--save-outputs", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(QJsonDocument::fromJson(r.out).object()["images"].toInt(), int(kN));
        const NamedTensors saved = readNpz(out.toStdString());
        QCOMPARE(saved.size(), std::size_t(2));
        const Tensor &y = named(saved, "y"), &z = named(saved, "z");
        QCOMPARE(y.shape, (Shape {kN, 4}));
        QCOMPARE(z.shape, (Shape {kN, 2}));
        const auto x = xValues().toFloat();
        const auto m = maskValues().toInt64();
        std::vector<float> wantY(std::size_t(kN * 4)), wantZ(std::size_t(kN * 2), 0.f);
        for (int64_t i = 0; i < kN; ++i)
            for (int64_t k = 0; k < 4; ++k) {
                const std::size_t at = std::size_t(i * 4 + k);
                wantY[at] = x[at] * float(m[at]);
                for (int64_t j = 0; j < 2; ++j)
                    wantZ[std::size_t(i * 2 + j)] += wantY[at] * test::kMaskedW[std::size_t(k * 2 + j)];
            }
        QCOMPARE(maxAbsDiff(y.toFloat(), wantY), 0.f);
        QVERIFY(maxAbsDiff(z.toFloat(), wantZ) < 1e-5f);
    }

    // h [2,N,3] fed and hn [2,N,3] saved sample-first; sr from --input-value; one output: NPY.
    void stateModelOutputs()
    {
        const int64_t n = 3;
        std::vector<float> x, h;
        for (int i = 0; i < n * 3; ++i)
            x.push_back(float(i) - 4);
        for (int i = 0; i < n * 2 * 3; ++i)
            h.push_back(0.25f * float(i));
        writeNpz({{"x", Tensor::fromVector<float>({n, 3}, x)}, {"h", Tensor::fromVector<float>({n, 2, 3}, h)}},
            path("state.npz").toStdString());
        const QString out = path("hn.npy");
        const auto r = cli({"run", state_, "--data", path("state.npz"), "--input-value", "sr=3", "--batch", "2",
            "--save-outputs", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const Tensor hn = readNpy(out.toStdString());
        QCOMPARE(hn.shape, (Shape {n, 2, 3}));
        std::vector<float> want;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t k = 0; k < 2; ++k)
                for (int64_t j = 0; j < 3; ++j)
                    want.push_back((h[std::size_t((i * 2 + k) * 3 + j)] + x[std::size_t(i * 3 + j)]) * 3);
        QCOMPARE(maxAbsDiff(hn.toFloat(), want), 0.f);

        const auto noRate = cli({"run", state_, "--data", path("state.npz")});
        QCOMPARE(noRate.exitCode, 1);
        QVERIFY2(
            noRate.err.contains("no array for input \"sr\"") && noRate.err.count('\n') == 1, noRate.err.constData());
    }

    // The saved outputs equal ONNX Runtime's on the same inputs.
    void saveOutputsEqualOrt()
    {
        const QString nodeModules = QS_SOURCE_DIR "/bench/ort/node_modules";
        const QString node = QStandardPaths::findExecutable("node");
        if (node.isEmpty() || !QFileInfo::exists(nodeModules + "/onnxruntime-node"))
            qFatal("node and bench/ort/node_modules/onnxruntime-node are needed (tools/setup.sh installs them)");
        auto raw = [&](const QString& name, const Tensor& t) {
            QFile f(path(name));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(reinterpret_cast<const char*>(t.bytes.data()), qint64(t.bytes.size()));
        };
        raw("x.f32", xValues());
        raw("mask.i64", maskValues());
        QDir().mkpath(path("ort"));
        QProcess p;
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert("NODE_PATH", nodeModules);
        p.setProcessEnvironment(env);
        p.start(node,
            {QS_SOURCE_DIR "/tests/runtime/ort_outputs.js", masked_, path("ort"), "x:float32:5x4:" + path("x.f32"),
                "attention_mask:int64:5x4:" + path("mask.i64")});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());

        const QString out = path("ours.npz");
        const auto r = cli({"run", masked_, "--data", path("data.npz"), "--batch", "3", "--save-outputs", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const NamedTensors saved = readNpz(out.toStdString());
        for (const char* name : {"y", "z"}) {
            QFile f(path("ort/%1.bin").arg(name));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray b = f.readAll();
            std::vector<float> ort(std::size_t(b.size()) / 4);
            std::memcpy(ort.data(), b.constData(), ort.size() * 4);
            QVERIFY2(maxAbsDiff(named(saved, name).toFloat(), ort) < 1e-5f, name);
        }
    }

    void errors()
    {
        const auto ext = cli({"run", masked_, "--data", path("data.npz"), "--save-outputs", path("out.txt")});
        QCOMPARE(ext.exitCode, 1);
        QVERIFY2(ext.err.contains("expected OUT.npz (the model has 2 outputs)"), ext.err.constData());
        writeNpz({{"x", xValues()}}, path("x_only.npz").toStdString());
        const auto missing = cli({"run", masked_, "--data", path("x_only.npz")});
        QCOMPARE(missing.exitCode, 1);
        QVERIFY2(missing.err.contains("no array for input \"attention_mask\"") && missing.err.count('\n') == 1,
            missing.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestCliRunInputs)
#include "test_cli_run_inputs.moc"
