// OCR character error rate of a text recognizer as shipped (PP-OCR's CTC recognizer from
// the corpus, tests/corpus/models.tsv) in FP32 and in simulated W8A8: text lines rendered
// here with a Debian font (DejaVu Sans, Qt's offscreen platform), nothing downloaded.
//
//   qs_bench_ocr MODEL KEYS [--lines 64] [--calib 32] [--wbits 8] [--abits 8]
//       [--granularity channel] [--calib-method minmax] [--json]
//
// MODEL: ch_PP-OCRv4_rec_infer.onnx (input x [N,3,48,W]); KEYS: ppocr_keys_v1.txt from
// the same package (class i is line i-1; 0 is the CTC blank, the class after the last
// line a space). Evaluation and calibration lines are different texts.
#include "../bench_util.h"

#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "runtime/cpu_isa.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <QFont>
#include <QFontMetrics>
#include <QGuiApplication>
#include <QImage>
#include <QPainter>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace qs;

namespace {

constexpr int kHeight = 48, kWidth = 320;

// Code points of a UTF-8 string (the keys file and the rendered texts).
std::u32string utf32(const std::string& s)
{
    return QString::fromStdString(s).toStdU32String();
}

std::vector<std::u32string> readKeys(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        fail(path, ": cannot read the recognizer's character list");
    std::vector<std::u32string> keys;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        keys.push_back(utf32(line));
    }
    if (keys.empty())
        fail(path, ": no characters");
    return keys;
}

// Deterministic lines of words, numbers, dates and prices that fit the 320-pixel line at
// the font size chosen.
std::vector<std::string> makeTexts(int count, uint32_t seed, const QFontMetrics& metrics)
{
    static const char* words[] = {"invoice", "total", "Station", "Road", "open", "daily", "Price", "north", "Model",
        "quantize", "Layer", "PAID", "Order", "street", "Market", "delivery", "Room", "exit", "Coffee", "ticket",
        "Platform", "time", "Bank", "receipt"};
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return int(rng() % uint32_t(n)); };
    std::vector<std::string> texts;
    while (int(texts.size()) < count) {
        std::string t;
        const int parts = 2 + pick(3);
        for (int p = 0; p < parts; ++p) {
            if (!t.empty())
                t += ' ';
            switch (pick(5)) {
            case 0:
                t += std::to_string(10 + pick(9990));
                break;
            case 1:
                t += std::to_string(1 + pick(28)) + "-" + std::to_string(1 + pick(12)) + "-20" +
                    std::to_string(10 + pick(20));
                break;
            case 2:
                t += std::to_string(pick(500)) + "." + std::to_string(10 + pick(90));
                break;
            default:
                t += words[pick(int(std::size(words)))];
            }
        }
        if (metrics.horizontalAdvance(QString::fromStdString(t)) <= kWidth - 16)
            texts.push_back(t);
    }
    return texts;
}

// [N,3,48,320] as PaddleOCR feeds its recognizer: RGB in [0,1], then (x - 0.5) / 0.5.
Tensor render(const std::vector<std::string>& texts, const QFont& font)
{
    const int64_t n = int64_t(texts.size());
    Tensor t = Tensor(DType::Float, Shape {n, 3, kHeight, kWidth});
    float* out = t.data<float>().data();
    for (int64_t i = 0; i < n; ++i) {
        QImage img(kWidth, kHeight, QImage::Format_RGB888);
        img.fill(Qt::white);
        QPainter p(&img);
        p.setFont(font);
        p.setPen(QColor(20, 20, 20));
        p.drawText(QRect(6, 0, kWidth - 12, kHeight), Qt::AlignVCenter | Qt::AlignLeft,
            QString::fromStdString(texts[std::size_t(i)]));
        p.end();
        for (int y = 0; y < kHeight; ++y) {
            const uchar* row = img.constScanLine(y);
            for (int x = 0; x < kWidth; ++x)
                for (int c = 0; c < 3; ++c)
                    out[((i * 3 + c) * kHeight + y) * kWidth + x] = (float(row[x * 3 + c]) / 255.f - 0.5f) / 0.5f;
        }
    }
    return t;
}

// Greedy CTC: the best class per time step, repeats merged, blanks dropped.
std::u32string decode(const float* probs, int64_t steps, int64_t classes, const std::vector<std::u32string>& keys)
{
    std::u32string s;
    int64_t prev = -1;
    for (int64_t t = 0; t < steps; ++t) {
        const float* row = probs + t * classes;
        const int64_t best = std::max_element(row, row + classes) - row;
        if (best != prev && best != 0) {
            if (best - 1 < int64_t(keys.size()))
                s += keys[std::size_t(best - 1)];
            else
                s += U' ';
        }
        prev = best;
    }
    return s;
}

std::size_t editDistance(const std::u32string& a, const std::u32string& b)
{
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

struct Score {
    double cer = 0;
    int exact = 0;
    double seconds = 0;
    std::vector<std::u32string> read;
};

// The rendered lines as the recognizer's one input.
DataInput renderedInput(const std::string& name, const std::vector<std::string>& texts, const QFont& font)
{
    DataInput in;
    in.name = name;
    in.source = "rendered text";
    in.samples = render(texts, font);
    return in;
}

// Runs `plan` one line at a time (the recognizer as users call it) and scores the reads.
Score score(
    Plan& plan, const DataInput& images, const std::vector<std::string>& texts, const std::vector<std::u32string>& keys)
{
    Score s;
    std::size_t errors = 0, chars = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const Tensor out = plan.run({images.batch(int64_t(i), 1)}).front();
        if (out.shape.size() != 3)
            fail("the recognizer's output is ", shapeString(out.shape), ", expected [1, steps, classes]");
        const std::u32string got = decode(out.data<float>().data(), out.shape[1], out.shape[2], keys);
        const std::u32string want = utf32(texts[i]);
        errors += editDistance(got, want);
        chars += want.size();
        s.exact += got == want ? 1 : 0;
        s.read.push_back(got);
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.cer = chars ? double(errors) / double(chars) : 0;
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    qputenv("QT_QPA_PLATFORM", "offscreen");
    QGuiApplication app(argc, argv);
    try {
        if (argc < 3)
            fail("usage: qs_bench_ocr MODEL KEYS [--lines N] [--calib N] [--wbits B] [--abits B] "
                 "[--granularity tensor|channel] [--calib-method minmax|...] [--json 1]");
        const std::string modelPath = argv[1], keysPath = argv[2];
        int lines = 64, calibLines = 32, wbits = 8, abits = 8;
        std::string granularity = "channel", calibMethod = "minmax";
        bool json = false;
        bench::forEachOption(argc, argv, 3, [&](const std::string& k, const std::string& v) {
            if (k == "--lines")
                lines = std::stoi(v);
            else if (k == "--calib")
                calibLines = std::stoi(v);
            else if (k == "--wbits")
                wbits = std::stoi(v);
            else if (k == "--abits")
                abits = std::stoi(v);
            else if (k == "--granularity")
                granularity = v;
            else if (k == "--calib-method")
                calibMethod = v;
            else if (k == "--json")
                json = v != "0";
            else
                fail("unknown option ", k);
        });
        if (lines < 1 || calibLines < 1)
            fail("--lines and --calib must be at least 1");
        const std::vector<std::u32string> keys = readKeys(keysPath);
        QFont font("DejaVu Sans");
        font.setPixelSize(26);
        const QFontMetrics metrics(font);
        const std::vector<std::string> texts = makeTexts(lines, 7, metrics);
        const std::vector<std::string> calibTexts = makeTexts(calibLines, 1234, metrics);
        const Graph g = importOnnx(modelPath);
        if (g.inputs.size() != 1)
            fail(modelPath, ": a recognizer with one image input is expected");
        const DataInput images = renderedInput(g.inputs.front().name, texts, font);
        const Shape one {1, 3, kHeight, kWidth};
        CompileOptions co;
        co.inputShapes[g.inputs.front().name] = one;
        auto fp32 = compilePlan(g, co);
        const Score f = score(*fp32, images, texts, keys);

        Dataset calib;
        calib.kind = "rendered";
        calib.path = "rendered text lines";
        calib.inputs.push_back(renderedInput(g.inputs.front().name, calibTexts, font));
        QuantizeOptions qo;
        qo.config.defaults.weight.bits = wbits;
        qo.config.defaults.weight.granularity = granularity == "tensor" ? Granularity::Tensor : Granularity::Channel;
        qo.config.defaults.activation.bits = abits;
        qo.config.defaults.activation.calibrator = calibMethod;
        qo.batch = 1;
        QuantSession session(g, qo);
        Progress progress;
        session.calibrate(calib, progress, CancelToken());
        session.quantizeWeights();
        auto quant = session.compile(true, one);
        const Score q = score(*quant, images, texts, keys);

        int agree = 0;
        for (std::size_t i = 0; i < texts.size(); ++i)
            agree += f.read[i] == q.read[i] ? 1 : 0;
        const std::string isa = detectCpuIsa().summary();
        const std::string wa = "W" + std::to_string(wbits) + "A" + std::to_string(abits);
        if (json) {
            std::printf(
                "{\"model\": \"%s\", \"lines\": %d, \"fp32_cer\": %.4f, \"quant\": \"%s\", \"quant_cer\": %.4f, "
                "\"fp32_exact\": %d, \"quant_exact\": %d, \"same_reads\": %d, \"fp32_s\": %.2f, \"quant_s\": %.2f, "
                "\"isa\": \"%s\"}\n",
                modelPath.c_str(), lines, f.cer, wa.c_str(), q.cer, f.exact, q.exact, agree, f.seconds, q.seconds,
                isa.c_str());
        } else {
            std::printf("CPU: %s\n", isa.c_str());
            std::printf("%d rendered lines (DejaVu Sans 26 px on 320x48), greedy CTC, simulated %s (%s, %s)\n", lines,
                wa.c_str(), granularity.c_str(), calibMethod.c_str());
            std::printf("FP32   CER %.4f  exact lines %d/%d  (%.2f s)\n", f.cer, f.exact, lines, f.seconds);
            std::printf("%-6s CER %.4f  exact lines %d/%d  (%.2f s)\n", wa.c_str(), q.cer, q.exact, lines, q.seconds);
            std::printf("same read in both: %d/%d\n", agree, lines);
            for (std::size_t i = 0; i < std::min<std::size_t>(texts.size(), 4); ++i)
                std::printf("  \"%s\" -> FP32 \"%s\", %s \"%s\"\n", texts[i].c_str(),
                    QString::fromStdU32String(f.read[i]).toStdString().c_str(), wa.c_str(),
                    QString::fromStdU32String(q.read[i]).toStdString().c_str());
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qs_bench_ocr: %s\n", e.what());
        return 1;
    }
}
