// ONNX Runtime (node + onnxruntime-node from bench/ort, which tools/setup.sh installs)
// running a model on a dataset through tests/export/ort_eval.js: the independent
// reference of the export and parity tests.
#pragma once

#include "data/dataset.h"

#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>
#include <QString>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace qs::test {

// The index of the largest value of each of `rows` equal rows (top-1 classes).
inline std::vector<int64_t> argmaxRows(const std::vector<float>& logits, int64_t rows)
{
    std::vector<int64_t> out;
    const int64_t classes = int64_t(logits.size()) / rows;
    for (int64_t r = 0; r < rows; ++r) {
        auto b = logits.begin() + r * classes;
        out.push_back(std::max_element(b, b + classes) - b);
    }
    return out;
}

// The first output's float32 values for every sample of `eval`, in batches of 100.
// `optimization`: "all" (QDQ fused into ORT's integer kernels) or "disabled" (QDQ
// executed as written, in float). Files go to `workDir`. Aborts the test on failure.
inline std::vector<float> ortLogits(
    const QString& model, const Dataset& eval, const QString& optimization, const QString& workDir)
{
    const QString nodeModules = QS_SOURCE_DIR "/bench/ort/node_modules";
    const QString script = QS_SOURCE_DIR "/tests/export/ort_eval.js";
    const QString node = QStandardPaths::findExecutable("node");
    if (node.isEmpty())
        qFatal("node is not on PATH (tools/setup.sh expects Node 20)");
    if (!QFileInfo::exists(nodeModules + "/onnxruntime-node"))
        qFatal("%s/onnxruntime-node is missing: run tools/setup.sh (it installs bench/ort)", qPrintable(nodeModules));
    const QString inputs = workDir + "/ort_inputs.f32", logits = workDir + "/ort_logits.f32";
    {
        QFile f(inputs);
        if (!f.open(QIODevice::WriteOnly))
            qFatal("cannot write %s", qPrintable(inputs));
        f.write(reinterpret_cast<const char*>(eval.first().bytes.data()), qint64(eval.first().bytes.size()));
    }
    QString dims = "[";
    for (std::size_t i = 1; i < eval.first().shape.size(); ++i)
        dims += (i > 1 ? "," : "") + QString::number(eval.first().shape[i]);
    dims += "]";
    QProcess p;
    auto env = QProcessEnvironment::systemEnvironment();
    env.insert("NODE_PATH", nodeModules);
    p.setProcessEnvironment(env);
    p.start(node, {script, model, inputs, dims, QString::number(eval.count()), "100", logits, optimization});
    p.waitForFinished(120000);
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        qFatal("ONNX Runtime failed on %s: %s", qPrintable(model), p.readAllStandardError().constData());
    std::ifstream in(logits.toStdString(), std::ios::binary);
    const std::string bytes {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<float> out(bytes.size() / 4);
    std::memcpy(out.data(), bytes.data(), out.size() * 4);
    return out;
}

} // namespace qs::test
