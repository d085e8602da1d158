// The corpus of pretrained models (tests/corpus/models.tsv, fetched by tools/corpus.js into
// QS_CORPUS_DIR): each model goes through what a user does with it, through the CLI, and is
// compared with ONNX Runtime (tests/corpus/ort_corpus.js) on deterministic real-looking inputs.
// Steps: inspect (parameters and layers found), runtime (our plan vs ONNX Runtime per output,
// relative max error at most 1e-4), run (`run --save-outputs`, the same comparison), quantize
// (W8A8), export (QDQ), ort_qdq (ONNX Runtime runs the QDQ file), parity (`parity --run`).
// A step expected to fail is listed in expected_failures.tsv with the prefix of its error; the
// test fails when an unlisted step fails, a listed one fails differently or passes.
// One CTest test per model: `test_corpus model:ID`.
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/cli_runner.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>

using namespace qs;

namespace {

constexpr int kSamples = 2;
constexpr double kMaxRelError = 1e-4;
constexpr double kMinSqnrDb = 10.0; // W8A8 output vs FP32: below this the quantized model is broken
// Models whose first output's SQNR says little about the quantization: the W8A8 gate reads
// the output SQNR of this layer instead (quantize --json "layers"), both are logged.
// ort_qdq compares that output as logits, log(p / (1 - p)), since ONNX Runtime gives
// outputs only. ocr_det: DB's probability map is the sigmoid of the last ConvTranspose's logits, which
// sit far below 0 on a picture without text; there the map's SQNR measures the sigmoid's
// knee, not the model (W8A16, with the logits at 25 dB, gives -9.8 dB; W8A8 0.0 dB with
// the logits at 17.6 dB, cosine 0.08; every calibrator alike).
const std::map<std::string, std::string> kMeasuredLayer = {{"ocr_det", "p2o.ConvTranspose.2"}};
const char* const kSteps[] = {"inspect", "runtime", "run", "quantize", "export", "ort_qdq", "parity"};

struct InputSpec {
    std::string name, type, gen; // type: f32 or i64
    Shape dims;                  // one sample as the model takes it ([] for a scalar)
};

struct ModelRow {
    std::string id, package, version, sha256, kind;
    std::vector<InputSpec> inputs;
};

struct Expected {
    std::string prefix, reason;
};

std::vector<std::string> split(const std::string& s, char sep)
{
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, sep);)
        out.push_back(part);
    return out;
}

std::vector<std::vector<std::string>> readTsv(const std::string& path, std::size_t columns)
{
    std::ifstream in(path);
    if (!in)
        qFatal("cannot read %s", path.c_str());
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#')
            continue;
        auto f = split(line, '\t');
        if (f.size() < columns)
            qFatal("%s: line \"%s\" has %zu columns, expected %zu", path.c_str(), line.c_str(), f.size(), columns);
        rows.push_back(f);
    }
    return rows;
}

std::vector<ModelRow> manifest()
{
    std::vector<ModelRow> out;
    for (const auto& f : readTsv(QS_SOURCE_DIR "/tests/corpus/models.tsv", 8)) {
        ModelRow m {f[0], f[1], f[2], f[5], f[6], {}};
        for (const auto& spec : split(f[7], ';')) {
            auto p = split(spec, ' ');
            if (p.size() != 4)
                qFatal("models.tsv: %s: input \"%s\" is not NAME TYPE DIMS GENERATOR", f[0].c_str(), spec.c_str());
            InputSpec in {p[0], p[1], p[3], {}};
            if (p[2] != "-")
                for (const auto& d : split(p[2], 'x'))
                    in.dims.push_back(std::stoll(d));
            m.inputs.push_back(in);
        }
        out.push_back(m);
    }
    return out;
}

QString corpusDir()
{
    const QByteArray env = qgetenv("QS_CORPUS_DIR");
    return env.isEmpty() ? QString(QS_CORPUS_DIR) : QString::fromLocal8Bit(env);
}

// ---- deterministic inputs -------------------------------------------------------------------

// A picture with structure in [0, 1]: smooth gradients, a bright disc and a row of dark bars
// (text-like strokes), different per channel and per sample.
float picture(int64_t c, int64_t y, int64_t x, int64_t h, int64_t w, int sample)
{
    const double u = double(x) / double(w), v = double(y) / double(h), pi = std::numbers::pi;
    double p = 0.45 + 0.25 * std::sin(2 * pi * (u * (1 + 0.3 * double(c)) + 0.17 * sample)) * std::cos(pi * v * 1.4) +
        0.2 * (v - 0.5) * (c % 2 ? -1 : 1);
    const double cx = 0.3 + 0.35 * sample, cy = 0.35, r = 0.18;
    if ((u - cx) * (u - cx) + (v - cy) * (v - cy) < r * r)
        p = 0.9 - 0.15 * double(c);
    if (v > 0.6 && v < 0.8 && u > 0.1 && u < 0.9 && std::fmod(u * 23.0 + 0.3 * sample, 1.0) < 0.45)
        p = 0.05;
    return float(std::clamp(p, 0.0, 1.0));
}

std::vector<double> genParams(const std::string& gen)
{
    std::vector<double> out;
    auto p = split(gen, ':');
    for (std::size_t i = 1; i < p.size(); ++i)
        out.push_back(std::stod(p[i]));
    return out;
}

// The values of one sample of one input.
std::vector<double> sampleValues(const InputSpec& in, int sample)
{
    const int64_t n = numelOf(in.dims);
    std::vector<double> v(std::size_t(n), 0.0);
    const std::string kind = split(in.gen, ':').at(0);
    const std::vector<double> a = genParams(in.gen);
    if (kind == "zeros")
        return v;
    if (kind == "const") {
        std::fill(v.begin(), v.end(), a.at(0));
    } else if (kind == "image") {
        // NCHW when the second dimension is a channel count, else NHWC.
        if (in.dims.size() != 4)
            qFatal("image input %s needs 4 dimensions", in.name.c_str());
        const bool nchw = in.dims[1] <= 4 && in.dims[3] > 4;
        const int64_t c = nchw ? in.dims[1] : in.dims[3], h = nchw ? in.dims[2] : in.dims[1],
                      w = nchw ? in.dims[3] : in.dims[2];
        for (int64_t b = 0; b < in.dims[0]; ++b)
            for (int64_t k = 0; k < c; ++k)
                for (int64_t y = 0; y < h; ++y)
                    for (int64_t x = 0; x < w; ++x) {
                        const int64_t i = nchw ? ((b * c + k) * h + y) * w + x : ((b * h + y) * w + x) * c + k;
                        v[std::size_t(i)] = a.at(0) + (a.at(1) - a.at(0)) * picture(k, y, x, h, w, sample + int(b));
                    }
    } else if (kind == "chirp") {
        // 16 kHz: a tone rising from 150 Hz to 1.5 kHz with its second harmonic, fading in.
        const double rate = 16000, f0 = 150, f1 = 1500, len = double(n) / rate, pi = std::numbers::pi;
        for (int64_t i = 0; i < n; ++i) {
            const double t = double(i) / rate;
            const double phase = 2 * pi * (f0 * t + (f1 - f0) * t * t / (2 * len)) + 0.7 * sample;
            v[std::size_t(i)] = std::min(1.0, t * 200) * (0.4 * std::sin(phase) + 0.15 * std::sin(2 * phase));
        }
    } else if (kind == "smooth") {
        for (int64_t i = 0; i < n; ++i) {
            const double x = double(i);
            v[std::size_t(i)] = a.at(0) *
                (0.5 * std::sin(0.013 * x + sample) + 0.3 * std::sin(0.071 * x + 2.0 * sample) +
                    0.2 * std::cos(0.0037 * x));
        }
    } else {
        qFatal("unknown input generator \"%s\"", in.gen.c_str());
    }
    return v;
}

Tensor sampleTensor(const InputSpec& in, int sample)
{
    const std::vector<double> v = sampleValues(in, sample);
    Tensor t(in.type == "i64" ? DType::Int64 : DType::Float, in.dims);
    t.name = in.name;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (t.dtype == DType::Int64)
            t.data<int64_t>()[i] = int64_t(std::llround(v[i]));
        else
            t.data<float>()[i] = float(v[i]);
    return t;
}

// Every sample of one input stacked as a dataset: [N, dims without their batch of 1] ([N]
// for a scalar). The batch is the first dimension, or the second for a recurrent state
// [layers, batch, hidden] (Silero's h and c, 2x1x64); dropping a 1 keeps the bytes.
Tensor stacked(const InputSpec& in)
{
    Shape shape {kSamples};
    Shape sample = in.dims;
    if (!sample.empty() && sample[0] == 1)
        sample.erase(sample.begin());
    else if (sample.size() == 3 && sample[1] == 1)
        sample.erase(sample.begin() + 1);
    shape.insert(shape.end(), sample.begin(), sample.end());
    Tensor all(in.type == "i64" ? DType::Int64 : DType::Float, shape);
    all.name = in.name;
    const std::size_t per = std::size_t(numelOf(in.dims)) * elementSize(all.dtype);
    for (int s = 0; s < kSamples; ++s)
        std::memcpy(all.bytes.data() + std::size_t(s) * per, sampleTensor(in, s).bytes.data(), per);
    return all;
}

// ---- NPZ (NumPy's zip of .npy arrays, stored or deflated) ----------------------------------

uint32_t le32(const std::string& b, std::size_t at)
{
    uint32_t v = 0;
    std::memcpy(&v, b.data() + at, 4);
    return v;
}

uint16_t le16(const std::string& b, std::size_t at)
{
    uint16_t v = 0;
    std::memcpy(&v, b.data() + at, 2);
    return v;
}

void writeNpz(const std::vector<Tensor>& arrays, const QString& path)
{
    std::string zip, central;
    auto put16 = [](std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); };
    auto put32 = [](std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); };
    const QString tmp = path + ".part.npy";
    for (const Tensor& t : arrays) {
        writeNpy(t, tmp.toStdString());
        QFile f(tmp);
        if (!f.open(QIODevice::ReadOnly))
            qFatal("cannot read %s", qPrintable(tmp));
        const QByteArray data = f.readAll();
        const std::string name = t.name + ".npy";
        const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(data.data()), uInt(data.size())));
        const uint32_t offset = uint32_t(zip.size());
        for (std::string* s : {&zip, &central}) {
            const bool local = s == &zip;
            put32(*s, local ? 0x04034b50 : 0x02014b50);
            if (!local)
                put16(*s, 20);
            for (uint16_t v : {20, 0, 0, 0, 0})
                put16(*s, v);
            put32(*s, crc);
            put32(*s, uint32_t(data.size()));
            put32(*s, uint32_t(data.size()));
            put16(*s, uint16_t(name.size()));
            put16(*s, 0);
            if (!local) {
                for (uint16_t v : {0, 0, 0})
                    put16(*s, v);
                put32(*s, 0);
                put32(*s, offset);
            }
            s->append(name);
        }
        zip.append(data.constData(), std::size_t(data.size()));
    }
    const uint32_t cdOffset = uint32_t(zip.size());
    zip += central;
    put32(zip, 0x06054b50);
    const uint16_t count = uint16_t(arrays.size());
    for (uint16_t v : {uint16_t(0), uint16_t(0), count, count})
        put16(zip, v);
    put32(zip, uint32_t(central.size()));
    put32(zip, cdOffset);
    put16(zip, 0);
    QFile::remove(tmp);
    QFile out(path);
    if (!out.open(QIODevice::WriteOnly))
        qFatal("cannot write %s", qPrintable(path));
    out.write(zip.data(), qint64(zip.size()));
}

// The arrays of an NPZ by name (without .npy). Empty on anything it cannot read.
std::map<std::string, Tensor> readNpz(const QString& path)
{
    std::map<std::string, Tensor> out;
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return out;
    const QByteArray raw = f.readAll();
    const std::string b(raw.constData(), std::size_t(raw.size()));
    std::size_t at = 0;
    while (at + 30 <= b.size() && le32(b, at) == 0x04034b50) {
        const uint16_t method = le16(b, at + 8), nameLen = le16(b, at + 26), extraLen = le16(b, at + 28);
        const uint32_t packed = le32(b, at + 18), size = le32(b, at + 22);
        std::string name = b.substr(at + 30, nameLen);
        const std::size_t data = at + 30 + nameLen + extraLen;
        if ((le16(b, at + 6) & 8) || data + packed > b.size())
            return {}; // sizes in a data descriptor: not written by numpy
        std::string bytes;
        if (method == 0) {
            bytes = b.substr(data, size);
        } else if (method == 8) {
            bytes.resize(size);
            z_stream z {};
            inflateInit2(&z, -MAX_WBITS);
            z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + data));
            z.avail_in = packed;
            z.next_out = reinterpret_cast<Bytef*>(bytes.data());
            z.avail_out = size;
            const int rc = inflate(&z, Z_FINISH);
            inflateEnd(&z);
            if (rc != Z_STREAM_END)
                return {};
        } else {
            return {};
        }
        if (name.size() > 4 && name.ends_with(".npy"))
            name.resize(name.size() - 4);
        out[name] = parseNpy(bytes, path.toStdString() + ":" + name);
        at = data + packed;
    }
    return out;
}

// ---- ONNX Runtime ----------------------------------------------------------------------------

struct OrtOutputs {
    std::vector<std::string> names;
    std::vector<std::vector<float>> values; // per output: every sample, concatenated
    std::string error;                      // non-empty when ONNX Runtime failed
};

OrtOutputs ortRun(const QString& model, const ModelRow& m, const QString& dir)
{
    const QString nodeModules = QS_SOURCE_DIR "/bench/ort/node_modules";
    const QString node = QStandardPaths::findExecutable("node");
    if (node.isEmpty())
        qFatal("node is not on PATH (tools/setup.sh expects Node 20)");
    if (!QFileInfo::exists(nodeModules + "/onnxruntime-node"))
        qFatal("%s/onnxruntime-node is missing: run tools/setup.sh (it installs bench/ort)", qPrintable(nodeModules));
    nlohmann::json spec {{"count", kSamples}, {"inputs", nlohmann::json::array()}};
    for (std::size_t k = 0; k < m.inputs.size(); ++k) {
        const InputSpec& in = m.inputs[k];
        const QString file = dir + QString("/ort_in_%1.bin").arg(k);
        QFile f(file);
        if (!f.open(QIODevice::WriteOnly))
            qFatal("cannot write %s", qPrintable(file));
        for (int s = 0; s < kSamples; ++s) {
            const Tensor t = sampleTensor(in, s);
            f.write(reinterpret_cast<const char*>(t.bytes.data()), qint64(t.bytes.size()));
        }
        spec["inputs"].push_back({{"name", in.name}, {"type", in.type == "i64" ? "int64" : "float32"},
            {"dims", in.dims}, {"file", file.toStdString()}});
    }
    const QString specPath = dir + "/ort_spec.json";
    std::ofstream(specPath.toStdString()) << spec.dump();
    const QString outDir = dir + "/ort_" + QFileInfo(model).completeBaseName();
    QDir().mkpath(outDir);
    QProcess p;
    auto env = QProcessEnvironment::systemEnvironment();
    env.insert("NODE_PATH", nodeModules);
    p.setProcessEnvironment(env);
    p.start(node, {QS_SOURCE_DIR "/tests/corpus/ort_corpus.js", model, specPath, outDir});
    p.waitForFinished(300000);
    OrtOutputs r;
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        r.error = p.readAllStandardError().trimmed().toStdString();
        if (r.error.empty())
            r.error = "ONNX Runtime did not finish";
        return r;
    }
    const auto info = nlohmann::json::parse(p.readAllStandardOutput().toStdString());
    for (std::size_t k = 0; k < info["outputs"].size(); ++k) {
        r.names.push_back(info["outputs"][k]["name"]);
        std::ifstream in((outDir + QString("/output_%1.f32").arg(k)).toStdString(), std::ios::binary);
        const std::string bytes {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        std::vector<float> v(bytes.size() / 4);
        std::memcpy(v.data(), bytes.data(), v.size() * 4);
        r.values.push_back(std::move(v));
    }
    return r;
}

// max |a - b| / max |b|; empty error text when within kMaxRelError.
std::string compareOutput(const std::string& name, const std::vector<float>& ours, const std::vector<float>& ref)
{
    if (ours.size() != ref.size())
        return "output \"" + name + "\": " + std::to_string(ours.size()) + " values, ONNX Runtime " +
            std::to_string(ref.size());
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        if (!std::isfinite(ours[i]) && std::isfinite(ref[i]))
            return "output \"" + name + "\": non-finite value at " + std::to_string(i);
        diff = std::max(diff, double(std::fabs(ours[i] - ref[i])));
        scale = std::max(scale, double(std::fabs(ref[i])));
    }
    const double rel = diff / std::max(scale, 1e-30);
    qInfo("    output %s: relative max error %.3g (max |ref| %.3g)", name.c_str(), rel, scale);
    if (rel > kMaxRelError) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "relative max error %.3g > %.0e", rel, kMaxRelError);
        return "output \"" + name + "\" differs from ONNX Runtime: " + buf;
    }
    return {};
}

// log(p / (1 - p)) of probabilities, clamped to [1e-7, 1 - 1e-7]: the logits of a sigmoid output.
std::vector<float> logitsOf(const std::vector<float>& p)
{
    std::vector<float> out(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
        const double q = std::clamp(double(p[i]), 1e-7, 1 - 1e-7);
        out[i] = float(std::log(q / (1 - q)));
    }
    return out;
}

double sqnrDb(const std::vector<float>& ref, const std::vector<float>& test)
{
    double s = 0, n = 0;
    for (std::size_t i = 0; i < ref.size() && i < test.size(); ++i) {
        s += double(ref[i]) * ref[i];
        n += (double(ref[i]) - test[i]) * (double(ref[i]) - test[i]);
    }
    return n == 0 ? INFINITY : 10 * std::log10(s / n);
}

// The line of a command's standard error that says "error:" (from "quantstudio-cli", without
// the progress text before it), else its first line (progress lines, overwritten with \r, left out).
std::string firstLine(const QByteArray& text)
{
    std::vector<std::string> lines;
    for (const QByteArray& line : text.split('\n')) {
        const QByteArray last = line.split('\r').last().trimmed();
        if (!last.isEmpty())
            lines.push_back(last.toStdString());
    }
    for (const auto& l : lines)
        if (l.find("error:") != std::string::npos) // after any progress text on the same line
            return l.substr(std::min(l.find("error:"), l.find("quantstudio-cli ")));
    return lines.empty() ? std::string() : lines.front();
}

// The error of a CLI step, or "" when it exited 0.
std::string cliError(const qs::test::CliResult& r)
{
    if (r.exitCode == 0)
        return {};
    if (r.exitCode < 0)
        return "crashed or timed out: " + firstLine(r.err);
    const std::string line = firstLine(r.err);
    return line.empty() ? "exit " + std::to_string(r.exitCode) : line;
}

} // namespace

class TestCorpus : public QObject {
    Q_OBJECT

private slots:
    void model_data();
    void model();
};

void TestCorpus::model_data()
{
    QTest::addColumn<int>("index");
    const auto rows = manifest();
    for (std::size_t i = 0; i < rows.size(); ++i)
        QTest::newRow(rows[i].id.c_str()) << int(i);
}

void TestCorpus::model()
{
    QFETCH(int, index);
    const ModelRow m = manifest().at(std::size_t(index));
    std::map<std::string, Expected> expected; // by step
    for (const auto& f : readTsv(QS_SOURCE_DIR "/tests/corpus/expected_failures.tsv", 4)) {
        if (std::find(std::begin(kSteps), std::end(kSteps), f[1]) == std::end(kSteps))
            QFAIL(qPrintable(QString("expected_failures.tsv: unknown step \"%1\"").arg(f[1].c_str())));
        if (f[0] == m.id)
            expected[f[1]] = {f[2], f[3]};
    }

    // The cache: a missing or changed model is a failure naming the setup command, never a skip.
    const QString path = corpusDir() + "/" + QString::fromStdString(m.id) + ".onnx";
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        QFAIL(qPrintable(
            QString("%1 is missing: run tools/setup.sh (or node tools/corpus.js) to fetch the corpus").arg(path)));
    const QByteArray sha = QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256).toHex();
    if (sha.toStdString() != m.sha256)
        QFAIL(qPrintable(QString("%1: sha256 %2, models.tsv says %3: run tools/setup.sh (or node tools/corpus.js)")
                             .arg(path, sha, m.sha256.c_str())));
    file.close();
    qInfo("%s: %s@%s, %s", m.id.c_str(), m.package.c_str(), m.version.c_str(), m.kind.c_str());

    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const QString dir = tmp.path();
    if (qEnvironmentVariableIsSet("QS_CORPUS_KEEP")) { // the data, database and QDQ file, to look into
        tmp.setAutoRemove(false);
        qInfo("    files kept in %s", qPrintable(dir));
    }
    const OrtOutputs ref = ortRun(path, m, dir);
    if (!ref.error.empty())
        QFAIL(qPrintable(QString("ONNX Runtime cannot run %1: %2").arg(path, ref.error.c_str())));

    // The dataset users would pass: an NPY for one input, an NPZ of arrays named after the inputs;
    // a scalar input of one value (Silero's sample rate sr) as --input-value, as users give it,
    // which also lets quantize inline an If it decides.
    std::vector<Tensor> arrays;
    QStringList values;
    for (const auto& in : m.inputs) {
        if (in.dims.empty() && in.gen.starts_with("const:"))
            values << QString::fromStdString(in.name + "=" + in.gen.substr(6));
        else
            arrays.push_back(stacked(in));
    }
    const QStringList valueArgs = values.isEmpty() ? QStringList() : QStringList {"--input-value", values.join(",")};
    const QString data = dir + (arrays.size() == 1 ? "/data.npy" : "/data.npz");
    if (arrays.size() == 1)
        writeNpy(arrays[0], data.toStdString());
    else
        writeNpz(arrays, data);

    std::map<std::string, std::string> outcome; // step -> error ("" passed, "blocked: ..." not run)
    auto cli = [&](const QStringList& args, int timeoutMs = 600000) { return qs::test::cli(args, timeoutMs); };

    // inspect: the command succeeds and finds the weights and the layers.
    {
        const auto r = cli({"inspect", path, "--json"});
        std::string err = cliError(r);
        if (err.empty()) {
            const auto j = nlohmann::json::parse(r.out.toStdString());
            const int64_t params = j.value("params", int64_t(0));
            const std::size_t layers = j["layers"].size();
            qInfo("    inspect: %lld parameters, %zu layers", static_cast<long long>(params), layers);
            if (params == 0 || layers == 0)
                err =
                    "inspect finds " + std::to_string(params) + " parameters and " + std::to_string(layers) + " layers";
        }
        outcome["inspect"] = err;
    }

    // runtime: our plan on each sample, every output against ONNX Runtime.
    {
        std::string err;
        try {
            Graph g = importOnnx(path.toStdString());
            CompileOptions copts;
            copts.threads = 1;
            for (const auto& in : m.inputs)
                copts.inputShapes[in.name] = in.dims;
            auto plan = compilePlan(g, copts);
            std::vector<std::vector<float>> ours(ref.values.size());
            for (int s = 0; s < kSamples; ++s) {
                std::vector<Tensor> ins;
                for (const auto& in : m.inputs)
                    ins.push_back(sampleTensor(in, s));
                const std::vector<Tensor> out = plan->run(ins);
                if (out.size() != ref.values.size())
                    throw std::runtime_error(
                        std::to_string(out.size()) + " outputs, ONNX Runtime " + std::to_string(ref.values.size()));
                for (std::size_t k = 0; k < out.size(); ++k) {
                    const auto v = out[k].toFloat();
                    ours[k].insert(ours[k].end(), v.begin(), v.end());
                }
            }
            for (std::size_t k = 0; k < ours.size() && err.empty(); ++k)
                err = compareOutput(ref.names[k], ours[k], ref.values[k]);
        } catch (const std::exception& e) {
            err = e.what();
            if (err.empty())
                err = "exception";
        }
        outcome["runtime"] = err;
    }

    // run --save-outputs: what users compare with their framework.
    {
        const QString saved = dir + (ref.names.size() == 1 ? "/outputs.npy" : "/outputs.npz");
        const auto r =
            cli(QStringList {"run", path, "--data", data, "--batch", "1", "--threads", "1", "--save-outputs", saved} +
                valueArgs);
        std::string err = cliError(r);
        if (err.empty()) {
            std::map<std::string, Tensor> got;
            if (ref.names.size() == 1) {
                try {
                    got[ref.names[0]] = readNpy(saved.toStdString());
                } catch (const std::exception& e) {
                    err = std::string("--save-outputs: ") + e.what();
                }
            } else {
                got = readNpz(saved);
            }
            for (std::size_t k = 0; k < ref.names.size() && err.empty(); ++k) {
                auto it = got.find(ref.names[k]);
                if (it == got.end())
                    err = "--save-outputs " + saved.toStdString() + " has no array \"" + ref.names[k] + "\"";
                else
                    err = compareOutput(ref.names[k], it->second.toFloat(), ref.values[k]);
            }
        }
        outcome["run"] = err;
    }

    // quantize W8A8 -> export QDQ -> ONNX Runtime runs it -> parity.
    const QString db = dir + "/corpus.db", qdq = dir + "/model.qdq.onnx";
    std::string runId;
    {
        const auto r =
            cli(QStringList {"quantize", path, "--data", data, "--wbits", "8", "--abits", "8", "--granularity",
                    "channel", "--calib", "minmax", "--batch", "1", "--threads", "1", "--db", db, "--json"} +
                valueArgs);
        std::string err = cliError(r);
        if (err.empty()) {
            const auto j = nlohmann::json::parse(r.out.toStdString());
            runId = std::to_string(j["run_id"].get<int64_t>());
            const double sqnr = j["sqnr_db"].is_number() ? j["sqnr_db"].get<double>() : INFINITY;
            qInfo("    quantize: run %s, W8A8 output SQNR %.2f dB", runId.c_str(), sqnr);
            if (auto measured = kMeasuredLayer.find(m.id); measured != kMeasuredLayer.end()) {
                double layerDb = -INFINITY;
                for (const auto& l : j["layers"])
                    if (l["name"] == measured->second)
                        layerDb = l["sqnr_db"].is_number() ? l["sqnr_db"].get<double>() : INFINITY;
                qInfo("    quantize: W8A8 SQNR of %s (the gate for this model) %.2f dB", measured->second.c_str(),
                    layerDb);
                if (!(layerDb >= kMinSqnrDb))
                    err = "W8A8 SQNR of " + measured->second + " " + std::to_string(layerDb) + " dB is below 10 dB";
            } else if (!(sqnr >= kMinSqnrDb)) {
                err = "W8A8 output SQNR " + std::to_string(sqnr) + " dB is below 10 dB";
            }
        }
        outcome["quantize"] = err;
    }
    // A run below the SQNR gate is still exported: ONNX Runtime must load and run every
    // quantized model; its quality was judged (and listed) at the quantize step.
    if (runId.empty()) {
        outcome["export"] = "blocked: quantize failed";
    } else {
        const auto r = cli({"export", QString::fromStdString(runId), "--format", "qdq", "--out", qdq, "--db", db});
        std::string err = cliError(r);
        if (err.empty() && !QFileInfo::exists(qdq))
            err = "export wrote no file";
        outcome["export"] = err;
    }
    if (!outcome["export"].empty()) {
        outcome["ort_qdq"] = outcome["parity"] = "blocked: export failed";
    } else {
        const OrtOutputs q = ortRun(qdq, m, dir);
        std::string err = q.error.empty() ? "" : "ONNX Runtime: " + q.error;
        for (std::size_t k = 0; err.empty() && k < q.values.size() && k < ref.values.size(); ++k) {
            // A measured model's output is the sigmoid of that layer: compared as its logits.
            const bool logits = k == 0 && kMeasuredLayer.count(m.id);
            const double s = logits ? sqnrDb(logitsOf(ref.values[k]), logitsOf(q.values[k]))
                                    : sqnrDb(ref.values[k], q.values[k]);
            qInfo("    ort_qdq: output %s%s SQNR %.2f dB against FP32 in ONNX Runtime", q.names[k].c_str(),
                logits ? " as logits log(p/(1-p))" : "", s);
            if (k == 0 && outcome["quantize"].empty() && !(s >= kMinSqnrDb))
                err = "QDQ output SQNR in ONNX Runtime " + std::to_string(s) + " dB is below 10 dB";
        }
        outcome["ort_qdq"] = err;
        const auto r =
            cli(QStringList {"parity", qdq, "--run", QString::fromStdString(runId), "--db", db, "--data", data} +
                valueArgs);
        outcome["parity"] = cliError(r);
    }

    // The verdict against expected_failures.tsv, on error texts with the paths of this machine
    // replaced by MODEL (the cached model) and TMP (the test's folder).
    QStringList problems;
    for (const char* step : kSteps) {
        std::string err =
            QString::fromStdString(outcome[step]).replace(path, "MODEL").replace(dir, "TMP").toStdString();
        auto it = expected.find(step);
        const bool blocked = err.starts_with("blocked: ");
        qInfo("  %-9s %s", step, err.empty() ? "passed" : err.c_str());
        if (blocked)
            continue;
        if (it == expected.end()) {
            if (!err.empty())
                problems << QString("%1: %2").arg(step, err.c_str());
        } else if (err.empty()) {
            problems << QString("%1 passes now: remove its line from expected_failures.tsv (%2)")
                            .arg(step, it->second.reason.c_str());
        } else if (!err.starts_with(it->second.prefix)) {
            problems << QString("%1 fails differently: \"%2\", expected_failures.tsv expects \"%3...\"")
                            .arg(step, err.c_str(), it->second.prefix.c_str());
        }
    }
    if (!problems.isEmpty())
        QFAIL(qPrintable(m.id.c_str() + QString(": ") + problems.join("; ")));
}

QTEST_GUILESS_MAIN(TestCorpus)
#include "test_corpus.moc"
