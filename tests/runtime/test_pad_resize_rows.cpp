// Pad and Resize copy and interpolate whole rows of the innermost axis (issue #26: on
// M-LSD they took half the time element by element), and broadcasting binary ops run
// row by row. Checked against naive per-element loops written here: constant, edge and
// reflect padding with growing, cropping and innermost-only pads; linear, nearest and
// tf_crop_and_resize (extrapolated) resizes over one, two and three axes (two axes: the
// row path of linear resizes; nearest ones inside the input: the gather path); Add, Sub, Div, Pow (by 2 and by 3) and Max broadcasting
// both ways, along inner or outer axes; ReduceMean, ReduceSum, ReduceMax and ReduceMin over
// consecutive axes (oneDNN picks its reference kernel for some; those run as rows); MaxPool
// on a plain input (a plain loop where oneDNN has no jit kernel).
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <cmath>

using namespace qs;

class TestPadResizeRows : public QObject {
    Q_OBJECT

private slots:
    void pad_data();
    void pad();
    void resize_data();
    void resize();
    void binary_data();
    void binary();
    void reduce_data();
    void reduce();
    void maxPool_data();
    void maxPool();
};

namespace {

using Dims = std::vector<int64_t>;

std::vector<float> inputValues(int64_t n)
{
    std::vector<float> x(std::size_t(n), 0.f);
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = float(std::sin(0.7 * double(i) + 0.3)) * 3.f + float(i % 5) * 0.25f;
    return x;
}

int64_t numel(const Dims& d)
{
    int64_t n = 1;
    for (int64_t v : d)
        n *= v;
    return n;
}

std::vector<float> runOne(const std::string& bytes, const Dims& in, const std::vector<float>& x)
{
    Graph g = importOnnxBytes(bytes, "rows.onnx", ".");
    CompileOptions o;
    o.threads = 1;
    auto plan = compilePlan(g, o);
    return plan->run({Tensor::fromVector<float>(in, x)}).at(0).toFloat();
}

void compareAll(const std::vector<float>& got, const std::vector<float>& want)
{
    QCOMPARE(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        if (std::fabs(double(got[i]) - double(want[i])) > 1e-6 * std::max(1.0, std::fabs(double(want[i]))))
            QFAIL(qPrintable(QString("element %1: got %2, want %3").arg(i).arg(got[i]).arg(want[i])));
}

// Source index of output index o along one axis, -1 for the constant fill.
int64_t padSource(int64_t o, int64_t before, int64_t len, const std::string& mode)
{
    const int64_t i = o - before;
    if (i >= 0 && i < len)
        return i;
    if (mode == "constant")
        return -1;
    if (mode == "edge")
        return i < 0 ? 0 : len - 1;
    return i < 0 ? -i : 2 * (len - 1) - i; // reflect
}

// Linear taps (index, weight) of output index o along one axis.
std::vector<std::pair<int64_t, double>> linearTaps(
    int64_t o, int64_t len, double scale, const std::string& coord, double roiStart, double roiEnd, int64_t outLen)
{
    double x;
    if (coord == "half_pixel")
        x = (o + 0.5) / scale - 0.5;
    else if (coord == "align_corners")
        x = outLen == 1 ? 0 : double(o) * double(len - 1) / double(outLen - 1);
    else if (coord == "tf_crop_and_resize")
        x = roiStart * double(len - 1) + double(o) * (roiEnd - roiStart) * double(len - 1) / double(outLen - 1);
    else
        x = o / scale;
    x = std::min(std::max(x, 0.0), double(len - 1));
    const auto i0 = int64_t(std::floor(x));
    const int64_t i1 = std::min(i0 + 1, len - 1);
    return {{i0, 1 - (x - double(i0))}, {i1, x - double(i0)}};
}

} // namespace

void TestPadResizeRows::pad_data()
{
    QTest::addColumn<Dims>("in");
    QTest::addColumn<Dims>("pads");
    QTest::addColumn<QString>("mode");
    QTest::newRow("constant 4d") << Dims {2, 3, 5, 6} << Dims {0, 1, 2, 3, 1, 0, 1, 2} << "constant";
    QTest::newRow("constant crop") << Dims {2, 3, 5, 6} << Dims {0, 0, -1, 2, 0, 0, 1, -2} << "constant";
    QTest::newRow("constant crop all of W") << Dims {1, 2, 3, 4} << Dims {0, 0, 0, -2, 0, 0, 0, -2} << "constant";
    QTest::newRow("constant nhwc") << Dims {1, 5, 6, 4} << Dims {0, 1, 1, 0, 0, 1, 1, 0} << "constant";
    QTest::newRow("constant 1d") << Dims {7} << Dims {2, 3} << "constant";
    QTest::newRow("edge 4d") << Dims {2, 3, 5, 6} << Dims {0, 0, 2, 3, 0, 0, 1, 2} << "edge";
    QTest::newRow("edge crop") << Dims {1, 3, 5, 6} << Dims {0, 1, -1, 2, 0, 1, 1, -2} << "edge";
    QTest::newRow("reflect 4d") << Dims {2, 3, 5, 6} << Dims {0, 1, 2, 3, 0, 1, 1, 4} << "reflect";
    QTest::newRow("reflect 2d") << Dims {4, 5} << Dims {3, 4, 2, 1} << "reflect";
}

void TestPadResizeRows::pad()
{
    QFETCH(Dims, in);
    QFETCH(Dims, pads);
    QFETCH(QString, mode);
    const std::size_t r = in.size();
    const float fill = 0.5f;
    Dims out(r);
    for (std::size_t d = 0; d < r; ++d)
        out[d] = in[d] + pads[d] + pads[d + r];
    test::OnnxBuilder b(10); // pads and value as attributes
    b.input("x", in);
    b.output("y", out);
    auto* n = b.node("Pad", {"x"}, {"y"}, "pad");
    test::OnnxBuilder::intsAttr(n, "pads", pads);
    test::OnnxBuilder::stringAttr(n, "mode", mode.toStdString());
    test::OnnxBuilder::floatAttr(n, "value", fill);
    const std::vector<float> x = inputValues(numel(in));

    std::vector<float> want(std::size_t(numel(out)));
    for (std::size_t o = 0; o < want.size(); ++o) {
        int64_t rem = int64_t(o), off = 0, stride = 1;
        bool inside = true;
        for (std::size_t d = r; d-- > 0;) {
            const int64_t i = padSource(rem % out[d], pads[d], in[d], mode.toStdString());
            rem /= out[d];
            inside = inside && i >= 0;
            off += i * stride;
            stride *= in[d];
        }
        want[o] = inside ? x[std::size_t(off)] : fill;
    }
    compareAll(runOne(b.bytes(), in, x), want);
}

void TestPadResizeRows::resize_data()
{
    QTest::addColumn<Dims>("in");
    QTest::addColumn<QVector<float>>("scales");
    QTest::addColumn<QString>("mode");
    QTest::addColumn<QString>("coord");
    QTest::newRow("linear half_pixel H W") << Dims {1, 3, 5, 7} << QVector<float> {1, 1, 2, 2} << "linear"
                                           << "half_pixel";
    QTest::newRow("linear align_corners C H W") << Dims {2, 3, 4, 5} << QVector<float> {1, 2, 1.5f, 2} << "linear"
                                                << "align_corners";
    QTest::newRow("linear asymmetric W only") << Dims {1, 2, 3, 9} << QVector<float> {1, 1, 1, 0.5f} << "linear"
                                              << "asymmetric";
    QTest::newRow("linear asymmetric H only") << Dims {1, 2, 3, 4} << QVector<float> {1, 1, 3, 1} << "linear"
                                              << "asymmetric";
    // The two-axis row path (outer axes whole): output rows reusing input rows, a downscale.
    QTest::newRow("linear half_pixel rows reused") << Dims {2, 3, 10, 12} << QVector<float> {1, 1, 2, 2} << "linear"
                                                   << "half_pixel";
    QTest::newRow("linear half_pixel downscale") << Dims {1, 3, 9, 11} << QVector<float> {1, 1, 0.5f, 0.6f} << "linear"
                                                 << "half_pixel";
    QTest::newRow("linear align_corners H W") << Dims {1, 2, 7, 5} << QVector<float> {1, 1, 2, 3} << "linear"
                                              << "align_corners";
    QTest::newRow("nearest asymmetric floor") << Dims {1, 3, 5, 7} << QVector<float> {1, 1, 2, 0.6f} << "nearest"
                                              << "asymmetric";
    // Nearest inside the input: the gather path, copying an output row that reads the same
    // input row as the one before (integer upsampling, PaddleOCR's detector neck).
    QTest::newRow("nearest asymmetric 4x rows copied") << Dims {2, 3, 4, 5} << QVector<float> {1, 1, 4, 4} << "nearest"
                                                       << "asymmetric";
    QTest::newRow("nearest asymmetric C H W") << Dims {2, 3, 4, 5} << QVector<float> {1, 2, 1.5f, 3} << "nearest"
                                              << "asymmetric";
    QTest::newRow("linear tf_crop_and_resize") << Dims {1, 2, 6, 8} << QVector<float> {1, 1, 1.5f, 1.5f} << "linear"
                                               << "tf_crop_and_resize";
}

void TestPadResizeRows::resize()
{
    QFETCH(Dims, in);
    QFETCH(QVector<float>, scales);
    QFETCH(QString, mode);
    QFETCH(QString, coord);
    const std::string c = coord.toStdString();
    const bool crop = c == "tf_crop_and_resize";
    // roi: N and C whole; H from -0.2 to 0.9 and W from 0.1 to 1.3 (partly outside).
    const std::vector<float> roi {0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f};
    const float extrapolation = 7.f;
    Dims out(4);
    for (std::size_t d = 0; d < 4; ++d)
        out[d] = int64_t(std::floor(double(in[d]) * double(scales[int(d)])));
    test::OnnxBuilder b(13);
    b.input("x", in);
    b.output("y", out);
    b.initializer("roi", {crop ? 8 : 0}, crop ? roi : std::vector<float> {});
    b.initializer("scales", {4}, std::vector<float>(scales.begin(), scales.end()));
    auto* n = b.node("Resize", {"x", "roi", "scales"}, {"y"}, "resize");
    test::OnnxBuilder::stringAttr(n, "mode", mode.toStdString());
    test::OnnxBuilder::stringAttr(n, "coordinate_transformation_mode", c);
    test::OnnxBuilder::stringAttr(n, "nearest_mode", "floor");
    test::OnnxBuilder::floatAttr(n, "extrapolation_value", extrapolation);
    const std::vector<float> x = inputValues(numel(in));

    // Per axis and output index: taps, or none when tf_crop_and_resize falls outside.
    std::vector<std::vector<std::vector<std::pair<int64_t, double>>>> taps(4);
    for (std::size_t d = 0; d < 4; ++d)
        for (int64_t o = 0; o < out[d]; ++o) {
            const double s = scales[int(d)];
            if (mode == "nearest") {
                taps[d].push_back({{std::min<int64_t>(int64_t(std::floor(o / s)), in[d] - 1), 1.0}});
                continue;
            }
            if (crop) {
                const double pos = roi[d] * double(in[d] - 1) +
                    double(o) * (roi[d + 4] - roi[d]) * double(in[d] - 1) / double(out[d] - 1);
                if (pos < 0 || pos > double(in[d] - 1)) {
                    taps[d].push_back({});
                    continue;
                }
            }
            taps[d].push_back(linearTaps(o, in[d], s, c, roi[d], roi[d + 4], out[d]));
        }
    std::vector<float> want;
    for (int64_t i0 = 0; i0 < out[0]; ++i0)
        for (int64_t i1 = 0; i1 < out[1]; ++i1)
            for (int64_t i2 = 0; i2 < out[2]; ++i2)
                for (int64_t i3 = 0; i3 < out[3]; ++i3) {
                    const auto& t0 = taps[0][std::size_t(i0)];
                    const auto& t1 = taps[1][std::size_t(i1)];
                    const auto& t2 = taps[2][std::size_t(i2)];
                    const auto& t3 = taps[3][std::size_t(i3)];
                    if (t0.empty() || t1.empty() || t2.empty() || t3.empty()) {
                        want.push_back(extrapolation);
                        continue;
                    }
                    double v = 0;
                    for (const auto& [a, wa] : t0)
                        for (const auto& [bb, wb] : t1)
                            for (const auto& [cc, wc] : t2)
                                for (const auto& [dd, wd] : t3)
                                    v += wa * wb * wc * wd *
                                        x[std::size_t(((a * in[1] + bb) * in[2] + cc) * in[3] + dd)];
                    want.push_back(float(v));
                }
    compareAll(runOne(b.bytes(), in, x), want);
}

void TestPadResizeRows::binary_data()
{
    QTest::addColumn<QString>("op");
    QTest::addColumn<Dims>("in");
    QTest::addColumn<Dims>("other"); // a constant
    QTest::newRow("Add inner broadcast both") << "Add" << Dims {2, 3, 1} << Dims {1, 3, 4};
    QTest::newRow("Sub middle axis (Silero)") << "Sub" << Dims {2, 1, 5} << Dims {2, 3, 5};
    QTest::newRow("Div outer and inner") << "Div" << Dims {1, 3, 1, 5} << Dims {2, 1, 4, 1};
    QTest::newRow("Pow by 2") << "Pow" << Dims {2, 3, 4} << Dims {1};
    QTest::newRow("Pow by 3") << "Pow" << Dims {2, 3, 4} << Dims {1};
    QTest::newRow("Max rank 1 against 3") << "Max" << Dims {4} << Dims {2, 3, 1};
}

void TestPadResizeRows::binary()
{
    QFETCH(QString, op);
    QFETCH(Dims, in);
    QFETCH(Dims, other);
    const std::string name = op.toStdString();
    const double exponent = QString(QTest::currentDataTag()).endsWith("3") ? 3 : 2;
    std::vector<float> k = inputValues(numel(other));
    for (float& v : k)
        v = name == "Pow" ? float(exponent) : v + 4.f; // divisors away from zero
    const std::size_t r = std::max(in.size(), other.size());
    Dims a(r - in.size(), 1), bb(r - other.size(), 1), out(r);
    a.insert(a.end(), in.begin(), in.end());
    bb.insert(bb.end(), other.begin(), other.end());
    for (std::size_t d = 0; d < r; ++d)
        out[d] = std::max(a[d], bb[d]);
    test::OnnxBuilder b(13);
    b.input("x", in);
    b.output("y", out);
    b.initializer("k", other, k);
    b.node(name, {"x", "k"}, {"y"}, "op");
    const std::vector<float> x = inputValues(numel(in));
    std::vector<float> want;
    for (int64_t o = 0; o < numel(out); ++o) {
        int64_t rem = o, ia = 0, ib = 0, sa = 1, sb = 1;
        for (std::size_t d = r; d-- > 0;) {
            const int64_t i = rem % out[d];
            rem /= out[d];
            ia += (a[d] == 1 ? 0 : i) * sa;
            ib += (bb[d] == 1 ? 0 : i) * sb;
            sa *= a[d];
            sb *= bb[d];
        }
        const double u = x[std::size_t(ia)], v = k[std::size_t(ib)];
        want.push_back(float(name == "Add" ? u + v : name == "Sub" ? u - v : name == "Div" ? u / v
                                 : name == "Pow"                      ? std::pow(u, v)
                                                                      : std::max(u, v)));
    }
    compareAll(runOne(b.bytes(), in, x), want);
}

void TestPadResizeRows::reduce_data()
{
    QTest::addColumn<QString>("op");
    QTest::addColumn<Dims>("in");
    QTest::addColumn<Dims>("axes");
    QTest::newRow("ReduceMean channels (Silero)") << "ReduceMean" << Dims {2, 5, 7} << Dims {1};
    QTest::newRow("ReduceSum outer") << "ReduceSum" << Dims {4, 3, 5} << Dims {0};
    QTest::newRow("ReduceMax two middle axes") << "ReduceMax" << Dims {2, 3, 4, 5} << Dims {1, 2};
    QTest::newRow("ReduceMin innermost") << "ReduceMin" << Dims {3, 6} << Dims {1};
}

void TestPadResizeRows::reduce()
{
    QFETCH(QString, op);
    QFETCH(Dims, in);
    QFETCH(Dims, axes);
    const std::string name = op.toStdString();
    Dims out = in;
    for (int64_t a : axes)
        out[std::size_t(a)] = 1;
    test::OnnxBuilder b(11); // axes as an attribute for every Reduce op
    b.input("x", in);
    b.output("y", out);
    auto* n = b.node(name, {"x"}, {"y"}, "reduce");
    test::OnnxBuilder::intsAttr(n, "axes", axes);
    const std::vector<float> x = inputValues(numel(in));
    std::vector<double> acc(std::size_t(numel(out)), name == "ReduceMax" ? -1e30 : name == "ReduceMin" ? 1e30 : 0.0);
    for (int64_t i = 0; i < numel(in); ++i) {
        int64_t rem = i, o = 0, stride = 1;
        for (std::size_t d = in.size(); d-- > 0;) {
            const int64_t k = rem % in[d];
            rem /= in[d];
            o += (out[d] == 1 ? 0 : k) * stride;
            stride *= out[d];
        }
        double& v = acc[std::size_t(o)];
        const double xi = x[std::size_t(i)];
        v = name == "ReduceMax" ? std::max(v, xi) : name == "ReduceMin" ? std::min(v, xi) : v + xi;
    }
    std::vector<float> want;
    for (double v : acc)
        want.push_back(float(name == "ReduceMean" ? v / double(numel(in) / numel(out)) : v));
    compareAll(runOne(b.bytes(), in, x), want);
}

void TestPadResizeRows::maxPool_data()
{
    QTest::addColumn<Dims>("in");
    QTest::addColumn<int64_t>("kernel");
    QTest::addColumn<int64_t>("stride");
    QTest::addColumn<int64_t>("pad");
    QTest::newRow("3x3 stride 1 pad 1 (M-LSD)") << Dims {1, 1, 9, 11} << int64_t(3) << int64_t(1) << int64_t(1);
    QTest::newRow("2x2 stride 2") << Dims {2, 3, 8, 6} << int64_t(2) << int64_t(2) << int64_t(0);
    QTest::newRow("3x3 stride 2 pad 1") << Dims {1, 2, 7, 9} << int64_t(3) << int64_t(2) << int64_t(1);
}

void TestPadResizeRows::maxPool()
{
    QFETCH(Dims, in);
    QFETCH(int64_t, kernel);
    QFETCH(int64_t, stride);
    QFETCH(int64_t, pad);
    const Dims out {in[0], in[1], (in[2] + 2 * pad - kernel) / stride + 1, (in[3] + 2 * pad - kernel) / stride + 1};
    test::OnnxBuilder b(13);
    b.input("x", in);
    b.output("y", out);
    auto* n = b.node("MaxPool", {"x"}, {"y"}, "pool");
    test::OnnxBuilder::intsAttr(n, "kernel_shape", {kernel, kernel});
    test::OnnxBuilder::intsAttr(n, "strides", {stride, stride});
    test::OnnxBuilder::intsAttr(n, "pads", {pad, pad, pad, pad});
    const std::vector<float> x = inputValues(numel(in));
    std::vector<float> want;
    for (int64_t p = 0; p < in[0] * in[1]; ++p)
        for (int64_t i = 0; i < out[2]; ++i)
            for (int64_t j = 0; j < out[3]; ++j) {
                float m = -1e30f;
                for (int64_t y = i * stride - pad; y < i * stride - pad + kernel; ++y)
                    for (int64_t v = j * stride - pad; v < j * stride - pad + kernel; ++v)
                        if (y >= 0 && y < in[2] && v >= 0 && v < in[3])
                            m = std::max(m, x[std::size_t((p * in[2] + y) * in[3] + v)]);
                want.push_back(m);
            }
    compareAll(runOne(b.bytes(), in, x), want);
}

QTEST_GUILESS_MAIN(TestPadResizeRows)
#include "test_pad_resize_rows.moc"
