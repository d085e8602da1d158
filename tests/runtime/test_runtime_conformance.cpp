// ONNX's own conformance cases (Debian libonnx-testdata: node, pytorch-converted,
// pytorch-operator, simple), one row per case: every case whose operators the
// runtime supports is compiled, run on each test_data_set and compared with the
// expected outputs. A case may only skip when tests/runtime/conformance_skips.txt
// lists it with (a part of) the reason it skips for; a skip not on the list fails,
// and so does a listed case that passes (remove it from the list) or that no longer
// exists. At least kMinimumPassed cases must pass. To add a case that cannot run,
// add a line "category/test_name  reason" to the list.
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <onnx/onnx_pb.h>

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

using namespace qs;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A TensorProto file read through the real importer: wrapped as the initializer of
// a one-node model, so the conversion is the one models get.
Tensor readTensorPb(const fs::path& p)
{
    onnx::TensorProto t;
    if (!t.ParseFromString(slurp(p)))
        throw Error(p.string() + ": not a TensorProto");
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("wrap");
    *g->add_initializer() = t;
    g->mutable_initializer(0)->set_name("t");
    auto* n = g->add_node();
    n->set_op_type("Identity");
    n->add_input("t");
    n->add_output("y");
    auto* out = g->add_output();
    out->set_name("y");
    out->mutable_type()->mutable_tensor_type()->set_elem_type(t.data_type());
    ImportOptions o;
    o.inferShapes = false;
    Graph graph = importOnnxBytes(m.SerializeAsString(), p.string(), "", o);
    return graph.initializers.at("t");
}

// Cases whose expected outputs need more than rtol 1e-4 / atol 1e-5, and why.
double extraTolerance(const std::string& name)
{
    // oneDNN's vectorized exp/log/tanh/erf are accurate to a few ulp, and these
    // cases accumulate over long reductions or chained transcendental functions.
    static const std::vector<std::string> loose{"softmax", "gelu", "erf", "lrn", "layer_norm", "resize", "pow",
                                                "tanh", "sigmoid", "elu", "hardswish", "exp", "log"};
    for (const auto& k : loose)
        if (name.find(k) != std::string::npos)
            return 10.0;
    return 1.0;
}

struct Counts {
    int pass = 0, fail = 0, skip = 0;
    std::map<std::string, int> skippedOps;
    std::vector<std::string> failed;
};
Counts counts;

// Of the 1072 cases in Debian's libonnx-testdata (ONNX 1.12), this many passed when the
// list was made; raise it as cases start to pass.
constexpr int kMinimumPassed = 725;

// The allow-list: case ("node/test_abs") -> the reason it skips for (a part of its message).
std::map<std::string, std::string> loadSkipList()
{
    std::map<std::string, std::string> list;
    std::ifstream in(QS_SOURCE_DIR "/tests/runtime/conformance_skips.txt");
    if (!in)
        qFatal("cannot open tests/runtime/conformance_skips.txt");
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        const auto space = line.find_first_of(" \t");
        const auto reason = line.find_first_not_of(" \t", space);
        if (space == std::string::npos || reason == std::string::npos)
            qFatal("conformance_skips.txt: \"%s\" has no reason", line.c_str());
        list[line.substr(0, space)] = line.substr(reason);
    }
    return list;
}

const std::map<std::string, std::string>& skipList()
{
    static const auto list = loadSkipList();
    return list;
}

std::set<std::string> seenRows;

// A skip of the current row, allowed only when the list names the case and the reason.
// Returns the message for QFAIL when it is not allowed, nothing when the skip stands.
std::optional<std::string> unexpectedSkip(const std::string& row, const std::string& why)
{
    auto it = skipList().find(row);
    if (it == skipList().end())
        return "skipped but not on conformance_skips.txt: " + why;
    if (why.find(it->second) == std::string::npos)
        return "skipped for another reason than conformance_skips.txt gives (\"" + it->second + "\"): " + why;
    return std::nullopt;
}

} // namespace

// Skips the row if the allow-list expects it, else fails it.
#define SKIP_CASE(why)                                                                                                 \
    do {                                                                                                               \
        const std::string why_ = (why);                                                                                \
        if (auto bad = unexpectedSkip(row, why_)) {                                                                    \
            ++counts.fail;                                                                                             \
            counts.failed.push_back(row);                                                                              \
            QFAIL(bad->c_str());                                                                                       \
        }                                                                                                              \
        ++counts.skip;                                                                                                 \
        QSKIP(why_.c_str());                                                                                           \
    } while (false)

namespace {

} // namespace

class TestRuntimeConformance : public QObject {
    Q_OBJECT

private slots:
    void conformance_data()
    {
        QTest::addColumn<QString>("dir");
        if (!fs::exists(QS_TESTDATA_DIR))
            QFAIL("libonnx-testdata is not installed");
        std::vector<fs::path> cases;
        for (const char* sub : {"node", "pytorch-converted", "pytorch-operator", "simple"})
            for (const auto& e : fs::directory_iterator(fs::path(QS_TESTDATA_DIR) / sub))
                if (fs::exists(e.path() / "model.onnx"))
                    cases.push_back(e.path());
        std::sort(cases.begin(), cases.end());
        for (const auto& c : cases) {
            const std::string row = c.parent_path().filename().string() + "/" + c.filename().string();
            QTest::newRow(row.c_str()) << QString::fromStdString(c.string());
        }
    }

    void conformance()
    {
        QFETCH(QString, dir);
        const fs::path caseDir = dir.toStdString();
        const std::string name = caseDir.filename().string();
        const std::string row = caseDir.parent_path().filename().string() + "/" + name;
        seenRows.insert(row);
        // ONNX 1.12's data truncates float32 to bfloat16; the runtime rounds to nearest
        // even, as the current ONNX spec and ONNX Runtime do.
        if (name == "test_cast_FLOAT_to_BFLOAT16")
            SKIP_CASE("expected output truncates instead of rounding (ONNX 1.12 test data)");
        Graph g;
        try {
            ImportOptions o;
            o.inferShapes = false;
            g = importOnnx((caseDir / "model.onnx").string(), o);
        } catch (const Error& e) {
            SKIP_CASE(std::string("import: ") + e.what());
        }
        const auto supported = supportedOperators();
        for (const auto& n : g.nodes)
            if (!n.domain.empty() || std::find(supported.begin(), supported.end(), n.opType) == supported.end()) {
                ++counts.skippedOps[n.opType];
                SKIP_CASE("unsupported operator " + n.opType);
            }
        std::vector<fs::path> sets;
        for (const auto& e : fs::directory_iterator(caseDir))
            if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
                sets.push_back(e.path());
        std::sort(sets.begin(), sets.end());
        QVERIFY(!sets.empty());
        const double scale = extraTolerance(name);
        for (const auto& set : sets) {
            std::vector<Tensor> inputs, expected;
            try {
                for (int i = 0; fs::exists(set / ("input_" + std::to_string(i) + ".pb")); ++i)
                    inputs.push_back(readTensorPb(set / ("input_" + std::to_string(i) + ".pb")));
                for (int i = 0; fs::exists(set / ("output_" + std::to_string(i) + ".pb")); ++i)
                    expected.push_back(readTensorPb(set / ("output_" + std::to_string(i) + ".pb")));
            } catch (const std::exception& e) {
                SKIP_CASE(std::string("test data is not a plain tensor (sequence or optional): ") + e.what());
            }
            // ONNX 1.12's data files store bfloat16 tensors as uint16.
            for (std::size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i)
                if (inputs[i].dtype == DType::UInt16 && g.inputs[i].dtype == DType::BFloat16)
                    inputs[i].dtype = DType::BFloat16;
            for (std::size_t i = 0; i < expected.size() && i < g.outputs.size(); ++i)
                if (expected[i].dtype == DType::UInt16 && g.outputs[i].dtype == DType::BFloat16)
                    expected[i].dtype = DType::BFloat16;
            if (inputs.size() != g.inputs.size())
                SKIP_CASE(str("data set gives ", inputs.size(), " inputs, the model has ", g.inputs.size(),
                    " (optional inputs omitted)"));
            CompileOptions opts;
            opts.threads = 1;
            for (std::size_t i = 0; i < inputs.size(); ++i)
                opts.inputShapes[g.inputs[i].name] = inputs[i].shape;
            std::unique_ptr<Plan> plan;
            std::vector<Tensor> runInputs = inputs;
            // Plans are compiled for fixed shapes, so inputs that decide shapes (Reshape's
            // shape, Slice's starts, Resize's scales, ...) must be known at compile time:
            // such cases run with those inputs baked in as initializers, first all but the
            // first input, then all of them (everything then runs as constant folding).
            for (int attempt = 0; !plan; ++attempt) {
                try {
                    plan = compilePlan(g, opts);
                } catch (const Error& e) {
                    const bool shapeInput = std::string(e.what()).find("must be a constant") != std::string::npos;
                    if (!shapeInput || attempt == 2)
                        SKIP_CASE(std::string("compile: ") + e.what());
                    const std::size_t keep = attempt == 0 ? 1 : 0;
                    while (g.inputs.size() > keep) {
                        const std::size_t i = g.inputs.size() - 1;
                        g.initializers[g.inputs[i].name] = runInputs[i];
                        opts.inputShapes.erase(g.inputs[i].name);
                        g.inputs.pop_back();
                        runInputs.pop_back();
                    }
                }
            }
            std::vector<Tensor> got;
            try {
                got = plan->run(runInputs);
            } catch (const std::exception& e) {
                ++counts.fail;
                counts.failed.push_back(name);
                QFAIL(qPrintable(QString("run: ") + e.what()));
            }
            QCOMPARE(got.size(), expected.size());
            for (std::size_t o = 0; o < got.size(); ++o) {
                const Tensor& a = got[o];
                const Tensor& b = expected[o];
                bool ok = a.shape == b.shape && a.dtype == b.dtype;
                std::string why = ok ? "" : str("output ", o, ": got ", dtypeName(a.dtype), " ", shapeString(a.shape),
                                                ", expected ", dtypeName(b.dtype), " ", shapeString(b.shape));
                if (ok && isFloating(a.dtype) && a.dtype != DType::BFloat16) {
                    auto x = a.toFloat(), y = b.toFloat();
                    for (std::size_t i = 0; i < x.size() && ok; ++i) {
                        if (std::isnan(y[i]) && std::isnan(x[i]))
                            continue;
                        if (std::isinf(y[i]) && x[i] == y[i])
                            continue;
                        const double tol = scale * (1e-5 + 1e-4 * std::fabs(y[i]));
                        if (!(std::fabs(double(x[i]) - double(y[i])) <= tol)) {
                            ok = false;
                            why = str("output ", o, " element ", i, ": got ", x[i], ", expected ", y[i]);
                        }
                    }
                } else if (ok) {
                    ok = a.bytes == b.bytes;
                    if (!ok)
                        why = str("output ", o, ": values differ");
                }
                if (!ok) {
                    ++counts.fail;
                    counts.failed.push_back(name);
                    QFAIL(qPrintable(QString::fromStdString(set.filename().string() + ": " + why)));
                }
            }
        }
        if (skipList().count(row)) {
            ++counts.fail;
            counts.failed.push_back(row);
            QFAIL("passes but conformance_skips.txt lists it: remove it from the list");
        }
        ++counts.pass;
    }

    void cleanupTestCase()
    {
        std::string ops;
        for (const auto& [op, n] : counts.skippedOps)
            ops += str(op, "(", n, ") ");
        qInfo("conformance: %d passed, %d failed, %d skipped", counts.pass, counts.fail, counts.skip);
        qInfo("skipped for unsupported operators: %s", ops.c_str());
        std::string failed;
        for (const auto& f : counts.failed)
            failed += f + " ";
        if (!failed.empty())
            qInfo("failed: %s", failed.c_str());
        // Only a run of every row can judge the list and the minimum (not a run of one row).
        if (seenRows.size() < 1000)
            return;
        std::string stale;
        for (const auto& [row, why] : skipList())
            if (!seenRows.count(row))
                stale += row + " ";
        QVERIFY2(stale.empty(),
            qPrintable(QString::fromStdString("listed in conformance_skips.txt, not in the data: " + stale)));
        QVERIFY2(counts.pass >= kMinimumPassed,
            qPrintable(QString("%1 cases passed, expected at least %2").arg(counts.pass).arg(kMinimumPassed)));
    }
};

QTEST_APPLESS_MAIN(TestRuntimeConformance)
#include "test_runtime_conformance.moc"
