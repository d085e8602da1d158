// The small sweep the cluster tests shard: the demo CNN at 3, 4 and 8 bits on 64
// samples, run through quantstudio-cli; and the check that two stored runs are equal.
#pragma once

#include "store/store.h"
#include "support/cli_runner.h"

#include <QString>
#include <QStringList>
#include <QtTest>

namespace qs::test {

inline QStringList sweepArgs()
{
    return {"sensitivity", QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx", "--data",
        QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz", "--bits", "3,4,8", "--limit", "64", "--batch",
        "32"};
}

// Runs the CLI; on a non-zero exit prints its stderr and returns false.
inline bool cliOk(const QStringList& args, CliResult* out = nullptr)
{
    CliResult r = cli(args);
    if (out)
        *out = r;
    if (r.exitCode != 0)
        qWarning("quantstudio-cli %s: exit %d\n%s", qPrintable(args.join(' ')), r.exitCode, r.err.constData());
    return r.exitCode == 0;
}

inline Store openStore(const QString& file)
{
    return Store::open(file.toStdString());
}

// The only run of a store file.
inline int64_t onlyRun(const Store& s)
{
    const auto runs = s.runs();
    return runs.size() == 1 ? runs.front().id : 0;
}

} // namespace qs::test
