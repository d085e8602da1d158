// Outlier inspection of transformer linear layers against naive loops over the
// activations themselves, and `quantstudio-cli outliers --json` on the saved model.
#include "quant/transformer_fixture.h"
#include "support/cli_runner.h"

#include "analysis/outliers.h"
#include "data/npy.h"
#include "graph/onnx_export.h"
#include "runtime/plan.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>

using namespace qs;
using namespace qs::test;

class TestOutliers : public QObject {
    Q_OBJECT

private slots:
    void matchesNaiveLoops()
    {
        const Graph g = tinyTransformer();
        const TransformerDims d;
        const Dataset data = tokenData(d, 12, 21);
        OutlierOptions o;
        o.batch = 5; // batches of 5, 5, 2: positions must not depend on the batch
        o.limit = -1;
        Progress p;
        const auto rows = profileLinearOutliers(g, data, o, p, CancelToken());
        QCOMPARE(int(rows.size()), 7); // every Gemm/MatMul with a weight; not the embedding lookup
        // The activations themselves, one sample batch, through a tap.
        CompileOptions co;
        co.inputShapes["input"] = data.first().shape;
        auto plan = compilePlan(g, co);
        std::map<std::string, Tensor> seen;
        for (const auto& r : rows)
            plan->addTap(r.input, [&seen](const std::string& v, const Tensor& t) { seen[v] = t; });
        plan->run({data.first()});
        for (const auto& r : rows) {
            const Tensor& x = seen.at(r.input);
            const int64_t ch = x.shape.back(), tokens = x.numel() / ch, pos = tokens / data.count();
            QCOMPARE(r.channels, ch);
            QCOMPARE(r.tokens, tokens);
            QCOMPARE(r.positions, int64_t(d.context));
            std::vector<float> chMax(std::size_t(ch), 0.f), posMax(std::size_t(pos), 0.f), tokMax;
            auto v = x.data<float>();
            for (int64_t t = 0; t < tokens; ++t) {
                float m = 0;
                for (int64_t c = 0; c < ch; ++c) {
                    const float a = std::abs(v[std::size_t(t * ch + c)]);
                    chMax[std::size_t(c)] = std::max(chMax[std::size_t(c)], a);
                    m = std::max(m, a);
                }
                posMax[std::size_t(t % pos)] = std::max(posMax[std::size_t(t % pos)], m);
                tokMax.push_back(m);
            }
            std::sort(tokMax.begin(), tokMax.end());
            QCOMPARE(r.channelMaxAbs, chMax);
            QCOMPARE(r.positionMaxAbs, posMax);
            QCOMPARE(r.tokenMaxAbs, tokMax.back());
            QCOMPARE(r.tokenMedianMaxAbs, tokMax[tokMax.size() / 2]);
            // Kurtosis of the weight by hand.
            const std::vector<float> w = g.constant(g.weightOf(g.nodes[std::size_t(g.findNode(r.layer))]))->toFloat();
            double mean = 0, m2 = 0, m4 = 0;
            for (float e : w)
                mean += e;
            mean /= double(w.size());
            for (float e : w) {
                m2 += (e - mean) * (e - mean);
                m4 += std::pow(e - mean, 4);
            }
            m2 /= double(w.size());
            m4 /= double(w.size());
            QVERIFY2(std::abs(r.weightKurtosis - m4 / (m2 * m2)) < 1e-6 * m4 / (m2 * m2), r.layer.c_str());
        }
        // The LayerNorm gains' large channels are the outliers the projections see.
        for (const auto& r : rows) {
            if (r.layer == "q_proj") {
                auto top = r.topChannels(2);
                std::sort(top.begin(), top.end());
                QCOMPARE(top, (std::vector<int64_t> {5, 17}));
                QVERIFY(r.channelOutlierRatio() > 5);
            }
            if (r.layer == "lm_head")
                QCOMPARE(r.topChannels(1), std::vector<int64_t> {9});
        }
    }

    void cliJson()
    {
        QTemporaryDir dir;
        const QString model = dir.filePath("gpt.onnx"), tokens = dir.filePath("tokens.npy");
        saveOnnx(tinyTransformer(), model.toStdString());
        writeNpy(tokenData({}, 6, 3).first(), tokens.toStdString());
        CliResult r = cli({"outliers", model, "--data", tokens, "--json", "--top", "2", "--limit", "4"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        const QJsonArray layers = j["layers"].toArray();
        QCOMPARE(layers.size(), 7);
        const QJsonObject q = layers[0].toObject();
        QCOMPARE(q["layer"].toString(), QString("q_proj"));
        QCOMPARE(q["channel_max_abs"].toArray().size(), 64);
        QCOMPARE(q["position_max_abs"].toArray().size(), 16);
        QCOMPARE(q["top_channels"].toArray().size(), 2);
        QCOMPARE(q["tokens"].toInt(), 4 * 16); // --limit 4 of the 6 samples
        CliResult text = cli({"outliers", model, "--data", tokens});
        QVERIFY2(text.exitCode == 0, text.err.constData());
        QVERIFY(text.out.contains("lm_head"));
        // A model without linear layers (the transformer cut after its embedding lookup)
        // is a one-line error naming the file, not a crash.
        Graph embedOnly = tinyTransformer();
        embedOnly.nodes.resize(2); // Cast, Gather
        QCOMPARE(embedOnly.nodes.back().name, std::string("embed"));
        embedOnly.outputs.front().name = embedOnly.nodes.back().outputs[0];
        embedOnly.outputs.front().dims.reset(); // the logits' shape is not the embedding's
        embedOnly.index();
        const QString embedModel = dir.filePath("embed.onnx");
        saveOnnx(embedOnly, embedModel.toStdString());
        CliResult bad = cli({"outliers", embedModel, "--data", tokens});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.trimmed().count('\n') == 0, bad.err.constData());
        QVERIFY2(bad.err.contains(embedModel.toUtf8() + ": no Gemm or MatMul layer"), bad.err.constData());
    }
};

QTEST_MAIN(TestOutliers)
#include "test_outliers.moc"
