// The graph optimizer on the pretrained corpus (tests/corpus/models.tsv, cached by
// tools/corpus.js): every model's outputs with all passes (compileOptimizedPlan)
// equal those of the graph as given to 1e-5 of each output's largest magnitude. A
// model missing from the cache is a failure (the setup step fetches them).
#include "graph/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "support/compare.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QtTest>

#include <cmath>

using namespace qs;

class TestGraphPassesCorpus : public QObject {
    Q_OBJECT

private slots:
    void unchangedOutputs_data();
    void unchangedOutputs();
};

namespace {

QString corpusDir()
{
    if (qEnvironmentVariableIsSet("QS_CORPUS_DIR"))
        return qEnvironmentVariable("QS_CORPUS_DIR");
    const QString cache = qEnvironmentVariableIsSet("XDG_CACHE_HOME") ? qEnvironmentVariable("XDG_CACHE_HOME")
                                                                      : QDir::homePath() + "/.cache";
    return cache + "/quantstudio/corpus";
}

// One input of models.tsv as a deterministic tensor in its generator's range (the
// values only need to be real-looking and the same for both runs).
Tensor inputFor(const QString& spec)
{
    const QStringList f = spec.split(' ');
    if (f.size() != 4)
        qFatal("models.tsv: bad input spec %s", qPrintable(spec));
    Shape dims;
    if (f[2] != "-")
        for (const QString& d : f[2].split('x'))
            dims.push_back(d.toLongLong());
    const QStringList gen = f[3].split(':');
    const int64_t n = numelOf(dims);
    if (f[1] == "i64") {
        const int64_t v = gen[0] == "const" ? gen[1].toLongLong() : 0;
        return Tensor::fromVector<int64_t>(dims, std::vector<int64_t>(std::size_t(n), v));
    }
    std::vector<float> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const double s = 0.5 + 0.5 * std::sin(0.013 * double(i) + 0.7 * std::sin(0.0007 * double(i)));
        if (gen[0] == "image")
            v[std::size_t(i)] = float(gen[1].toDouble() + (gen[2].toDouble() - gen[1].toDouble()) * s);
        else if (gen[0] == "smooth")
            v[std::size_t(i)] = float(gen[1].toDouble() * (2 * s - 1));
        else if (gen[0] == "chirp")
            v[std::size_t(i)] = float(0.5 * std::sin(0.0005 * double(i) * double(i)));
        else if (gen[0] == "const")
            v[std::size_t(i)] = gen[1].toFloat();
    }
    return Tensor::fromVector<float>(dims, v);
}

} // namespace

void TestGraphPassesCorpus::unchangedOutputs_data()
{
    QTest::addColumn<QString>("id");
    QTest::addColumn<QStringList>("inputs");
    QFile f(QS_SOURCE_DIR "/tests/corpus/models.tsv");
    QVERIFY(f.open(QIODevice::ReadOnly));
    for (const QByteArray& line : f.readAll().split('\n')) {
        if (line.trimmed().isEmpty() || line.startsWith('#'))
            continue;
        const QStringList cols = QString::fromUtf8(line).split('\t');
        QVERIFY(cols.size() == 8);
        QTest::newRow(qPrintable(cols[0])) << cols[0] << cols[7].split(';');
    }
}

void TestGraphPassesCorpus::unchangedOutputs()
{
    QFETCH(QString, id);
    QFETCH(QStringList, inputs);
    const QString path = corpusDir() + "/" + id + ".onnx";
    if (!QFileInfo::exists(path))
        QFAIL(qPrintable(path + " is missing: run node tools/corpus.js (tools/setup.sh does)"));
    qputenv("QS_RUNTIME_PASSES", "all");
    const Graph g = importOnnx(path.toStdString());
    CompileOptions o;
    o.threads = 1;
    std::vector<Tensor> in;
    for (const QString& spec : inputs) {
        in.push_back(inputFor(spec));
        o.inputShapes[spec.split(' ')[0].toStdString()] = in.back().shape;
    }
    const auto want = compilePlan(g, o)->run(in);
    const auto got = compileOptimizedPlan(g, o)->run(in);
    const rt::OptimizedGraph opt = rt::optimizeGraph(g, "all");
    std::string summary;
    for (const auto& r : opt.passes)
        summary += r.pass + " " + std::to_string(r.rewrites) + "  ";
    qInfo("%s: %zu -> %zu nodes; %s", qPrintable(id), g.nodes.size(), opt.graph.nodes.size(), summary.c_str());
    QCOMPARE(got.size(), want.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        QCOMPARE(got[k].shape, want[k].shape);
        const double rel = qs::test::maxRelDiff(got[k].toFloat(), want[k].toFloat());
        qInfo("  output %s: max difference %.3g relative", g.outputs[k].name.c_str(), rel);
        QVERIFY2(rel <= 1e-5, qPrintable(QString("output %1 differs by %2 relative").arg(k).arg(rel)));
    }
}

QTEST_GUILESS_MAIN(TestGraphPassesCorpus)
#include "test_graph_passes_corpus.moc"
