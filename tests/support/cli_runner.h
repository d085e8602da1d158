// quantstudio-cli (QS_CLI_PATH, set by qs_add_test) as a child process, for the tests
// of its commands: exit code, standard output and standard error.
#pragma once

#include <QByteArray>
#include <QProcess>
#include <QStringList>

namespace qs::test {

struct CliResult {
    int exitCode; // -1 when the process crashed or did not finish in time
    QByteArray out, err;
};

inline CliResult cli(const QStringList& args, int timeoutMs = 300000)
{
    QProcess p;
    p.start(QS_CLI_PATH, args);
    const bool finished = p.waitForFinished(timeoutMs);
    const bool normal = finished && p.exitStatus() == QProcess::NormalExit;
    return {normal ? p.exitCode() : -1, p.readAllStandardOutput(), p.readAllStandardError()};
}

} // namespace qs::test
