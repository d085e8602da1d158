#include "ui/document/app_paths.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

namespace qs::ui {

QString demoDir()
{
    const QString env = qEnvironmentVariable("QS_DEMO_DIR");
    if (!env.isEmpty())
        return env;
    const QString app = QCoreApplication::applicationDirPath();
    for (const QString& candidate : {app + QStringLiteral("/../share/quantstudio/demo"),
                                     app + QStringLiteral("/../../resources/demo"),
                                     QStringLiteral(QS_RESOURCE_DIR "/demo")})
        if (QFileInfo::exists(candidate + QStringLiteral("/fashion_cnn.onnx")))
            return QDir(candidate).absolutePath();
    return QStringLiteral(QS_RESOURCE_DIR "/demo");
}

QString demoModelPath()
{
    return demoDir() + QStringLiteral("/fashion_cnn.onnx");
}

QString dataBesideModel(const QString& modelPath)
{
    const QDir dir = QFileInfo(modelPath).absoluteDir();
    const QStringList found = dir.entryList({QStringLiteral("*-images-idx3-ubyte"), QStringLiteral("*-images-idx3-ubyte.gz"),
                                             QStringLiteral("*-images.idx3-ubyte")},
                                            QDir::Files, QDir::Name);
    return found.isEmpty() ? QString() : dir.filePath(found.front());
}

} // namespace qs::ui
