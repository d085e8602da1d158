// QuantConfig JSON: round trip, per-layer overrides, and errors naming the field.
#include "quant/spec.h"

#include <QtTest>

using namespace qs;

class TestQuantConfig : public QObject {
    Q_OBJECT

private slots:
    void roundTrip()
    {
        QuantConfig c;
        c.defaults.weight.bits = 4;
        c.defaults.weight.granularity = Granularity::Group;
        c.defaults.weight.groupSize = 64;
        c.defaults.activation.calibrator = "percentile";
        c.defaults.activation.calibratorParam = 99.9;
        LayerQuant first = c.defaults;
        first.weight.bits = 8;
        first.activation.range = std::make_pair(-1.f, 2.f);
        c.layers["conv1"] = first;
        c.excluded.insert("fc");
        c.algorithms.push_back({"bias_correction", {{"samples", 64}}});
        QuantConfig back = QuantConfig::fromJson(nlohmann::json::parse(c.toJson().dump()));
        QCOMPARE(back.toJson(), c.toJson());
        QVERIFY(back.forLayer("conv1") == first);
        QVERIFY(!back.forLayer("fc").has_value());
        QCOMPARE(back.forLayer("other")->weight.bits, 4);
    }

    void rangesRoundTrip()
    {
        QuantConfig c;
        c.ranges["/stem/relu/Relu_output_0"] = {-0.5f, 3.25f};
        c.ranges["fc.weight"] = {-0.125f, 0.25f};
        const nlohmann::json j = c.toJson();
        QCOMPARE(j["ranges"]["fc.weight"][1].get<float>(), 0.25f);
        QuantConfig back = QuantConfig::fromJson(nlohmann::json::parse(j.dump()));
        QCOMPARE(back.ranges.size(), std::size_t(2));
        QCOMPARE(back.ranges.at("/stem/relu/Relu_output_0").first, -0.5f);
        QCOMPARE(back.ranges.at("fc.weight").second, 0.25f);
        QCOMPARE(back.toJson(), j);
        // Optional: a config without ranges writes none, and old JSON reads as before.
        QVERIFY(!QuantConfig().toJson().contains("ranges"));
        QVERIFY(QuantConfig::fromJson(QuantConfig().toJson()).ranges.empty());
    }

    void layerOverridesStartFromDefaults()
    {
        auto j = nlohmann::json::parse(R"({"layers": {"a": {"weight": {"bits": 3}}},
                                           "default": {"weight": {"bits": 6, "granularity": "tensor"}}})");
        QuantConfig c = QuantConfig::fromJson(j);
        QCOMPARE(c.forLayer("a")->weight.bits, 3);
        QCOMPARE(int(c.forLayer("a")->weight.granularity), int(Granularity::Tensor));
        QCOMPARE(c.forLayer("b")->weight.bits, 6);
    }

    void errorsNameTheField_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expected");
        QTest::newRow("bits range") << R"({"default": {"weight": {"bits": 9}}})" << "default.weight.bits: 9 is not 2..8";
        QTest::newRow("bits type") << R"({"default": {"weight": {"bits": "x"}}})" << "default.weight.bits: wrong type";
        QTest::newRow("unknown field") << R"({"default": {"weight": {"bitz": 4}}})" << "default.weight.bitz: unknown field";
        QTest::newRow("granularity") << R"({"layers": {"c": {"weight": {"granularity": "row"}}}})" << "granularity \"row\"";
        QTest::newRow("calibrator") << R"({"default": {"activation": {"calibrator": "magic"}}})" << "calibrator \"magic\"";
        QTest::newRow("range") << R"({"default": {"activation": {"range": [2, 1]}}})" << "range: lo must be below hi";
        QTest::newRow("top level") << R"({"defaults": {}})" << "defaults: unknown field";
        QTest::newRow("exclude") << R"({"exclude": "fc"})" << "exclude: expected an array";
        QTest::newRow("ranges type") << R"({"ranges": [1, 2]})" << "ranges: expected an object";
        QTest::newRow("ranges order") << R"({"ranges": {"x": [3, -1]}})" << "ranges.x: lo must be below hi";
        QTest::newRow("ranges shape") << R"({"ranges": {"x": [1]}})" << "ranges.x: expected [lo, hi]";
        QTest::newRow("ranges number") << R"({"ranges": {"x": ["a", 1]}})" << "ranges.x: expected [lo, hi]";
    }

    void errorsNameTheField()
    {
        QFETCH(QString, json);
        QFETCH(QString, expected);
        try {
            QuantConfig::fromJson(nlohmann::json::parse(json.toStdString()));
            QFAIL("no error");
        } catch (const std::exception& e) {
            QVERIFY2(std::string(e.what()).find(expected.toStdString()) != std::string::npos, e.what());
        }
    }

    void cliStyleParsers()
    {
        QuantSpec s;
        parseGranularity("group:32", s);
        QCOMPARE(s.groupSize, 32);
        parseCalibrator("percentile:99.9", s);
        QCOMPARE(s.calibratorParam, 99.9);
        parseCalibrator("mse", s);
        QCOMPARE(s.calibrator, std::string("mse"));
        QVERIFY_EXCEPTION_THROWN(parseCalibrator("percentile:20", s), std::exception);
        QVERIFY_EXCEPTION_THROWN(parseGranularity("group:0", s), std::exception);
    }
};

QTEST_APPLESS_MAIN(TestQuantConfig)
#include "test_quant_config.moc"
