// GPTQ: on the same weights and data, the layer output error of GPTQ's weights is
// lower than round-to-nearest's (both measured by the naive reference on held-out
// samples), for Gemm and Conv (im2col), per channel and per group, with act-order.
// Also: every research algorithm runs through quantizeModel and records its parameters.
// Block by block: the blocks are the residual stream's narrowest cuts; GPTQ's weights
// equal those of each layer quantized alone on the whole model's inputs (the
// independent reference), with the FP32 model's inputs ("sequential": false) or with the
// earlier blocks' quantized weights put into the model (the paper's sequential order).
#include "algo_fixtures.h"
#include "transformer_fixture.h"

#include "quant/algorithms/linear_layer.h"
#include "quant/session.h"

#include <QtTest>

using namespace qs;
using namespace qs::test;

class TestAlgoGptq : public QObject {
    Q_OBJECT

private slots:
    void beatsRoundToNearest_data()
    {
        QTest::addColumn<QString>("layer");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::addColumn<bool>("actOrder");
        QTest::newRow("gemm W4 channel") << "gemm" << 4 << "channel" << false;
        QTest::newRow("gemm W3 group:8") << "gemm" << 3 << "group:8" << false;
        QTest::newRow("gemm W3 group:8 act-order") << "gemm" << 3 << "group:8" << true;
        QTest::newRow("gemm [K,N] W4 tensor act-order") << "gemm-kn" << 4 << "tensor" << true;
        QTest::newRow("conv W4 channel") << "conv" << 4 << "channel" << false;
        QTest::newRow("conv W3 group:2 act-order") << "conv" << 3 << "group:2" << true;
    }

    void beatsRoundToNearest()
    {
        QFETCH(QString, layer);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        QFETCH(bool, actOrder);
        auto [g, calib, held] = singleLayer(layer.toStdString(), 11);
        QuantSession s(g, weightOnly(bits, granularity.toStdString()));
        s.quantizeWeights();
        const auto rtn = s.weightOverrides;
        Progress p;
        algorithm("gptq").apply(s, calib, {{"act_order", actOrder}, {"samples", calib.count()}}, p, CancelToken());
        QVERIFY(s.notes.contains("gptq"));

        const Tensor x = held.first();
        const Tensor ref = referenceRun(s.graph(), x);
        const double eRtn = mse(ref, referenceRun(s.graph(), x, rtn));
        const double eGptq = mse(ref, referenceRun(s.graph(), x, s.weightOverrides));
        qInfo("output MSE: RTN %.6g, GPTQ %.6g; %s", eRtn, eGptq, s.notes["gptq"]["layers"].dump().c_str());
        QVERIFY2(eGptq < 0.9 * eRtn, qPrintable(QString("GPTQ %1 vs RTN %2").arg(eGptq).arg(eRtn)));

        // Every GPTQ weight lies on the spec's grid: re-quantizing with the blocks'
        // own range is exact for per-channel/tensor, and the values are few.
        const std::string w = s.layers().front().weight;
        std::set<float> distinct(
            s.weightOverrides.at(w).data<float>().begin(), s.weightOverrides.at(w).data<float>().end());
        const int64_t blocks = planWeightQuantization(g.constant(w)->toFloat(), g.constant(w)->shape,
            s.layers().front().outAxis, s.layers().front().inAxis, s.layers().front().spec.weight)
                                   .blocks();
        QVERIFY(int64_t(distinct.size()) <= blocks * ((1 << bits) - 1));
    }

    // GPTQ on a 4x8 Gemm against a naive re-implementation of the recurrence in its
    // original OBS form (Frantar et al. 2022, eq. 2-3: quantize column i, spread its error
    // over the later columns with H^-1, then remove row and column i from H^-1 by a rank-1
    // update), with its own symmetric per-channel grid: the quantized weights are the same,
    // and the calibration objective sum ||W x - Q x||^2, summed by a naive loop, is no
    // worse than round-to-nearest's.
    void matchesNaiveRecurrence()
    {
        const int64_t rows = 4, k = 8, n = 64, bits = 4;
        GraphBuilder b(Shape {1, k});
        b.gemm(k, rows);
        const Graph g = b.finish();
        const Dataset calib = correlatedData({k}, n, 5);
        QuantSession s(g, weightOnly(int(bits), "channel"));
        s.quantizeWeights();
        Progress p;
        algorithm("gptq").apply(s, calib, {{"samples", n}, {"percdamp", 0.01}}, p, CancelToken());
        const std::string wName = s.layers().front().weight;
        const auto got = s.weightOverrides.at(wName).toFloat();
        const auto w0 = g.constant(wName)->toFloat(); // [rows][k] (transB=1)
        const auto x = calib.first().toFloat();        // [n][k]

        std::vector<double> h(std::size_t(k * k), 0.0);
        for (int64_t s_ = 0; s_ < n; ++s_)
            for (int64_t i = 0; i < k; ++i)
                for (int64_t j = 0; j < k; ++j)
                    h[std::size_t(i * k + j)] +=
                        2.0 * x[std::size_t(s_ * k + i)] * x[std::size_t(s_ * k + j)] / double(n);
        double meanDiag = 0;
        for (int64_t i = 0; i < k; ++i)
            meanDiag += h[std::size_t(i * k + i)] / double(k);
        // H^-1 of the dampened H by Gauss-Jordan elimination.
        std::vector<double> a = h, hinv(std::size_t(k * k), 0.0);
        for (int64_t i = 0; i < k; ++i) {
            a[std::size_t(i * k + i)] += 0.01 * meanDiag;
            hinv[std::size_t(i * k + i)] = 1;
        }
        for (int64_t c = 0; c < k; ++c) {
            const double piv = a[std::size_t(c * k + c)];
            for (int64_t j = 0; j < k; ++j) {
                a[std::size_t(c * k + j)] /= piv;
                hinv[std::size_t(c * k + j)] /= piv;
            }
            for (int64_t r = 0; r < k; ++r)
                if (r != c) {
                    const double f = a[std::size_t(r * k + c)];
                    for (int64_t j = 0; j < k; ++j) {
                        a[std::size_t(r * k + j)] -= f * a[std::size_t(c * k + j)];
                        hinv[std::size_t(r * k + j)] -= f * hinv[std::size_t(c * k + j)];
                    }
                }
        }
        const int qmax = (1 << (bits - 1)) - 1;
        auto quant = [&](double v, double scale) {
            return std::clamp(std::nearbyint(v / scale), double(-qmax), double(qmax)) * scale;
        };
        std::vector<double> scale(static_cast<std::size_t>(rows), 0.0), w(w0.begin(), w0.end()), want(w.size()),
            rtn(w.size());
        for (int64_t r = 0; r < rows; ++r) {
            double m = 0;
            for (int64_t i = 0; i < k; ++i)
                m = std::max(m, std::fabs(double(w0[std::size_t(r * k + i)])));
            scale[std::size_t(r)] = double(float(m) / float(qmax));
            for (int64_t i = 0; i < k; ++i)
                rtn[std::size_t(r * k + i)] = quant(w0[std::size_t(r * k + i)], scale[std::size_t(r)]);
        }
        for (int64_t i = 0; i < k; ++i) {
            const double d = hinv[std::size_t(i * k + i)];
            for (int64_t r = 0; r < rows; ++r) {
                const double wi = w[std::size_t(r * k + i)];
                want[std::size_t(r * k + i)] = quant(wi, scale[std::size_t(r)]);
                const double e = (wi - want[std::size_t(r * k + i)]) / d;
                for (int64_t j = i + 1; j < k; ++j)
                    w[std::size_t(r * k + j)] -= e * hinv[std::size_t(i * k + j)];
            }
            for (int64_t r = i + 1; r < k; ++r)
                for (int64_t j = i + 1; j < k; ++j)
                    hinv[std::size_t(r * k + j)] -= hinv[std::size_t(r * k + i)] * hinv[std::size_t(i * k + j)] / d;
        }
        for (std::size_t i = 0; i < want.size(); ++i)
            QVERIFY2(std::fabs(got[i] - want[i]) <= 1e-6 * scale[i / std::size_t(k)],
                qPrintable(QString("weight %1: GPTQ %2, naive recurrence %3").arg(i).arg(got[i]).arg(want[i])));

        auto objective = [&](const auto& q) {
            double sum = 0;
            for (int64_t s_ = 0; s_ < n; ++s_)
                for (int64_t r = 0; r < rows; ++r) {
                    double d = 0;
                    for (int64_t i = 0; i < k; ++i)
                        d += (double(w0[std::size_t(r * k + i)]) - double(q[std::size_t(r * k + i)])) *
                            x[std::size_t(s_ * k + i)];
                    sum += d * d;
                }
            return sum;
        };
        const double eGptq = objective(got), eRtn = objective(rtn);
        qInfo("sum ||Wx - Qx||^2 over the calibration set: GPTQ %.6g, RTN %.6g", eGptq, eRtn);
        QVERIFY2(eGptq <= eRtn, qPrintable(QString("GPTQ %1 vs RTN %2").arg(eGptq).arg(eRtn)));
        // The reported proxy errors are tr(D H D^T) = 2/n sum ||Wx - Qx||^2; GPTQ's comes
        // from its column errors (D = E U), RTN's from the product with H.
        const auto& report = s.notes.at("gptq").at("layers").at(0);
        const double pGptq = report.at("proxy_error_gptq").get<double>(), pRtn = report.at("proxy_error_rtn").get<double>();
        QVERIFY2(std::fabs(pGptq - 2 * eGptq / double(n)) <= 1e-6 * pGptq,
            qPrintable(QString("proxy_error_gptq %1, naive %2").arg(pGptq).arg(2 * eGptq / double(n))));
        QVERIFY2(std::fabs(pRtn - 2 * eRtn / double(n)) <= 1e-6 * pRtn,
            qPrintable(QString("proxy_error_rtn %1, naive %2").arg(pRtn).arg(2 * eRtn / double(n))));
    }

    // Every research algorithm through the whole flow (fold, algorithms, calibration,
    // quantization, evaluation on the runtime) on a Gemm-ReLU-Gemm-Gemm chain, its
    // effective parameters recorded in the result's notes.
    void runsThroughQuantizeModel_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("param");
        for (const char* n : {"gptq", "awq", "smoothquant", "rotation", "adaround", "spqr"})
            QTest::newRow(n) << n << 4 << "";
        QTest::newRow("fp8_e4m3") << "fp8_e4m3" << 8 << "format";
        QTest::newRow("fp4_e2m1") << "fp4_e2m1" << 4 << "format";
    }

    void runsThroughQuantizeModel()
    {
        QFETCH(QString, name);
        QFETCH(int, bits);
        QFETCH(QString, param);
        GraphBuilder b(Shape {1, 16});
        b.gemm(16, 32);
        b.relu();
        b.gemm(32, 16);
        b.gemm(16, 10);
        Graph g = b.finish();
        Dataset calib = correlatedData({16}, 64, 3);
        Dataset eval = correlatedData({16}, 64, 4);
        QuantizeOptions o;
        o.config.defaults.weight.bits = bits;
        o.config.algorithms.push_back({name.toStdString(), nlohmann::json::object()});
        o.calibLimit = 64;
        Progress p;
        QuantizeResult r = quantizeModel(g, calib, eval, o, p, CancelToken());
        QCOMPARE(r.applied, std::vector<std::string> {name.toStdString()});
        QVERIFY2(r.algorithmNotes.contains(name.toStdString()), r.algorithmNotes.dump().c_str());
        QVERIFY(r.algorithmNotes[name.toStdString()]["params"].is_object());
        if (!param.isEmpty())
            QVERIFY(r.algorithmNotes[name.toStdString()]["params"].contains(param.toStdString()));
        QCOMPARE(r.config["algorithms"][0]["name"].get<std::string>(), name.toStdString());
        QVERIFY2(r.sqnrDb > 10, qPrintable(QString::number(r.sqnrDb)));
        if (name == "rotation")
            QCOMPARE(int(r.algorithmNotes["rotation"]["pairs"].size()), 1); // Gemm2 -> Gemm3
    }

    // Two residual MLP blocks and a head on [N, 16] (x + W2 relu(W1 x), twice, then W5).
    static Graph residualMlp()
    {
        GraphBuilder b(Shape {1, 16});
        for (int block = 0; block < 2; ++block) {
            const std::string x = b.last;
            b.gemm(16, 32);
            b.relu();
            b.gemm(32, 16);
            b.add("Add", {b.last, x});
        }
        b.gemm(16, 10);
        return b.finish();
    }

    static std::vector<std::string> blockOf(const Graph& g, const std::vector<std::string>& layers)
    {
        std::vector<std::string> out;
        const auto blocks = algo::findBlocks(g, layers);
        for (const std::string& l : layers)
            for (std::size_t k = 0; k < blocks.size(); ++k)
                if (g.findNode(l) >= blocks[k].first && g.findNode(l) <= blocks[k].last)
                    out.push_back(l + ":" + std::to_string(k));
        return out;
    }

    // The cuts: a decoder's attention half, MLP half and head; every layer of a plain chain.
    void findsResidualBlocks()
    {
        const Graph t = tinyTransformer();
        QCOMPARE(blockOf(t, {"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2", "lm_head"}),
            (std::vector<std::string> {"q_proj:0", "k_proj:0", "v_proj:0", "o_proj:0", "fc1:1", "fc2:1", "lm_head:2"}));
        const Graph r = residualMlp();
        QCOMPARE(blockOf(r, {"Gemm0", "Gemm2", "Gemm4", "Gemm6", "Gemm8"}),
            (std::vector<std::string> {"Gemm0:0", "Gemm2:0", "Gemm4:1", "Gemm6:1", "Gemm8:2"}));
        GraphBuilder b(Shape {1, 8});
        b.gemm(8, 8);
        b.relu();
        b.gemm(8, 8);
        b.gemm(8, 4);
        QCOMPARE(blockOf(b.finish(), {"Gemm0", "Gemm2", "Gemm3"}),
            (std::vector<std::string> {"Gemm0:0", "Gemm2:1", "Gemm3:2"}));
        const auto blocks = algo::findBlocks(r, {"Gemm0", "Gemm2", "Gemm4", "Gemm6", "Gemm8"});
        QCOMPARE(blocks.front().first, 0);
        QCOMPARE(blocks.back().last, int(r.nodes.size()) - 1);
        for (std::size_t k = 1; k < blocks.size(); ++k)
            QCOMPARE(blocks[k].first, blocks[k - 1].last + 1);
    }

    // GPTQ of one layer alone (the others excluded) in `g`: one block, the whole model's
    // FP32 inputs, as GPTQ observed every layer before blocks.
    static Tensor gptqAlone(const Graph& g, const std::string& layer, const Dataset& calib)
    {
        QuantizeOptions o = weightOnly(4, "channel");
        o.batch = 16;
        for (const Node& n : g.nodes)
            if (n.opType == "Gemm" && n.name != layer)
                o.config.excluded.insert(n.name);
        QuantSession s(g, o);
        if (s.layers().size() != 1)
            fail("expected one quantized layer, got ", s.layers().size());
        s.quantizeWeights();
        Progress p;
        algorithm("gptq").apply(s, calib, {{"samples", calib.count()}, {"sequential", false}}, p, CancelToken());
        return s.weightOverrides.at(s.layers().front().weight);
    }

    static void compareWeights(const Tensor& got, const Tensor& want, const std::string& what)
    {
        QCOMPARE(got.shape, want.shape);
        auto a = got.data<float>(), b = want.data<float>();
        int64_t differ = 0;
        double worst = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            worst = std::max(worst, double(std::abs(a[i] - b[i])));
            differ += std::abs(a[i] - b[i]) > 1e-5f * (1 + std::abs(b[i]));
        }
        QVERIFY2(differ == 0, qPrintable(QString("%1: %2 of %3 weights differ (worst %4)")
                                             .arg(QString::fromStdString(what)).arg(differ).arg(a.size()).arg(worst)));
    }

    void blockwiseMatchesLayersAlone_data()
    {
        QTest::addColumn<bool>("sequential");
        QTest::newRow("FP32 inputs") << false;
        QTest::newRow("sequential") << true;
    }

    void blockwiseMatchesLayersAlone()
    {
        QFETCH(bool, sequential);
        const Graph g = residualMlp();
        const Dataset calib = correlatedData({16}, 48, 21);
        QuantizeOptions o = weightOnly(4, "channel");
        o.batch = 16; // three calibration batches go through every block
        QuantSession s(g, o);
        s.quantizeWeights();
        Progress p;
        algorithm("gptq").apply(s, calib, {{"samples", calib.count()}, {"sequential", sequential}}, p, CancelToken());
        QCOMPARE(s.notes["gptq"]["params"]["sequential"].get<bool>(), sequential);
        // Blocks as findsResidualBlocks: {Gemm0, Gemm2}, {Gemm4, Gemm6}, {Gemm8}.
        const std::vector<std::vector<std::string>> blocks = {{"Gemm0", "Gemm2"}, {"Gemm4", "Gemm6"}, {"Gemm8"}};
        Graph before = g; // the model with the blocks before the current one quantized
        bool laterDiffer = false;
        for (const auto& block : blocks) {
            for (const std::string& layer : block) {
                const std::string w = g.nodes[std::size_t(g.findNode(layer))].input(1);
                const Tensor want = gptqAlone(sequential ? before : g, layer, calib);
                compareWeights(s.weightOverrides.at(w), want, layer);
                if (sequential && &block != &blocks.front()) { // it differs from the FP32 inputs' result
                    const Tensor fp = gptqAlone(g, layer, calib);
                    auto a = want.data<float>(), b = fp.data<float>();
                    laterDiffer = laterDiffer || !std::equal(a.begin(), a.end(), b.begin());
                }
            }
            for (const std::string& layer : block) {
                const std::string w = g.nodes[std::size_t(g.findNode(layer))].input(1);
                Tensor q = s.weightOverrides.at(w);
                q.name = w;
                before.initializers[w] = q;
            }
        }
        QCOMPARE(laterDiffer, sequential);
    }

    void rejectsBadParameters()
    {
        GraphBuilder b(Shape {1, 8});
        b.gemm(8, 4);
        QuantSession s(b.finish(), weightOnly(4, "channel"));
        Dataset d = channelOutlierData({8}, 16, 1);
        Progress p;
        QVERIFY_THROWS_EXCEPTION(
            Error, algorithm("gptq").apply(s, d, nlohmann::json({{"percdamp", -1.0}}), p, CancelToken()));
    }
};

QTEST_MAIN(TestAlgoGptq)
#include "test_algo_gptq.moc"
