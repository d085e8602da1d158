// Malformed input to quantstudio-cli, as a user or an attacker would give it: every case
// ends with exit code 1 and one line on stderr naming the option, node or file, never
// with a crash, a hang or a silently different run. Add a case as a row of
// badInput_data(); files it needs are made in initTestCase().
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"
#include "support/onnx_builder.h"

#include <zlib.h>

#include <sys/stat.h>

using qs::test::cli;
using qs::test::OnnxBuilder;

namespace {

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";

std::vector<float> ramp(std::size_t n)
{
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = float(int(i % 5) - 2) * 0.25f;
    return v;
}

// x [N,2,5,5] -> Conv "conv" (w [4,2,3,3], bias of 2 values: too short) -> then either
// BatchNormalization "bn" or Relu -> Conv "conv2" (a chain --cle equalizes).
void writeShortBiasModel(const QString& path, bool batchNorm)
{
    OnnxBuilder b;
    b.input("x", {-1, 2, 5, 5});
    b.initializer("w", {4, 2, 3, 3}, ramp(72));
    b.initializer("b", {2}, {0.5f, -0.5f});
    b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
    if (batchNorm) {
        b.initializer("gamma", {4}, {1, 2, 3, 4});
        b.initializer("beta", {4}, {0.5f, 0.5f, 0.5f, 0.5f});
        b.initializer("mean", {4}, {0, 0.1f, 0.2f, 0.3f});
        b.initializer("var", {4}, {1, 1, 1, 1});
        b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
    } else {
        b.node("Relu", {"c"}, {"r"}, "relu");
        b.initializer("w2", {3, 4, 1, 1}, ramp(12));
        b.node("Conv", {"r", "w2"}, {"y"}, "conv2");
    }
    b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
    b.save(path.toStdString());
}

void writeBytes(const QString& path, const QByteArray& bytes)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(bytes);
}

// `bytes`, then `zeros` zero bytes, gzipped.
void writeGzip(const QString& path, const QByteArray& bytes, qint64 zeros)
{
    gzFile f = gzopen(path.toLocal8Bit().constData(), "wb9");
    gzwrite(f, bytes.constData(), unsigned(bytes.size()));
    const QByteArray chunk(1 << 20, '\0');
    for (; zeros > 0; zeros -= chunk.size())
        gzwrite(f, chunk.constData(), unsigned(std::min<qint64>(zeros, chunk.size())));
    gzclose(f);
}

QByteArray npy(const QByteArray& header, int payloadBytes)
{
    QByteArray b("\x93NUMPY\x01\x00", 8);
    b.append(char(header.size() & 0xff)).append(char(header.size() >> 8)).append(header);
    return b.append(QByteArray(payloadBytes, '\0'));
}

} // namespace

class TestCliBadInput : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString path(const QString& name) const { return dir_.filePath(name); }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        writeShortBiasModel(path("bias-bn.onnx"), true);
        writeShortBiasModel(path("bias-cle.onnx"), false);
        // Two samples announced as -2.
        writeBytes(path("negative.npy"),
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 1, 28, 28), }", 2 * 784 * 4));
        // A header of 200 KB (format 2): std::regex once recursed per character over it.
        QByteArray big("{'descr': '<f4', 'fortran_order': False, 'shape': (");
        big.append(QByteArray(200000, ' ')).append("2, 1, 28, 28), }");
        QByteArray v2("\x93NUMPY\x02\x00", 8);
        for (int i = 0; i < 4; ++i)
            v2.append(char((big.size() >> (8 * i)) & 0xff));
        writeBytes(path("big-header.npy"), v2 + big + QByteArray(2 * 784 * 4, '\0'));
        // Two images announced, 256 MB of zeros follow (a 250 KB file).
        QByteArray bomb("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c", 16);
        writeGzip(path("bomb-images-idx3-ubyte.gz"), bomb, 2 * 784 + (qint64(256) << 20));
        QCOMPARE(::mkfifo(path("pipe.onnx").toLocal8Bit().constData(), 0600), 0);
    }

    void badInput_data()
    {
        // Arguments (FILE: replaced by a file of initTestCase()) and what stderr must name.
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("mentions");
        const QStringList run {"run", kModel, "--data", "random:2"};
        const QStringList quantize {"quantize", kModel, "--data", "random:2", "--calib-limit", "2"};
        QTest::newRow("--wbits wraps to 4") << quantize + QStringList {"--wbits", "4294967300"} << "--wbits";
        QTest::newRow("--abits with a space") << quantize + QStringList {"--abits", " 8"} << "--abits";
        QTest::newRow("--batch beyond int") << run + QStringList {"--batch", "99999999999"} << "--batch";
        QTest::newRow("--threads negative") << run + QStringList {"--threads", "-1"} << "--threads";
        QTest::newRow("--limit below -1") << run + QStringList {"--limit", "-2"} << "--limit";
        QTest::newRow("--mean nan") << run + QStringList {"--mean", "nan"} << "--mean";
        QTest::newRow("--std 1e999") << run + QStringList {"--std", "1e999"} << "--std";
        QTest::newRow("random:N wraps to 2")
            << QStringList {"run", kModel, "--data", "random:1152921504606846978"} << "random:1152921504606846978";
        QTest::newRow("NPY shape -2") << QStringList {"run", kModel, "--data", "FILE:negative.npy"} << "negative.npy";
        QTest::newRow("NPY header of 200 KB")
            << QStringList {"run", kModel, "--data", "FILE:big-header.npy"} << "big-header.npy";
        QTest::newRow("gzip IDX bomb") << QStringList {"run", kModel, "--data", "FILE:bomb-images-idx3-ubyte.gz"}
                                       << "bomb-images-idx3-ubyte.gz";
        QTest::newRow("/dev/zero as the model")
            << QStringList {"run", "/dev/zero", "--data", "random:2"} << "/dev/zero";
        QTest::newRow("FIFO as the model")
            << QStringList {"run", "FILE:pipe.onnx", "--data", "random:2"} << "pipe.onnx";
        QTest::newRow("/dev/zero as data") << QStringList {"run", kModel, "--data", "/dev/zero"} << "/dev/zero";
        QTest::newRow("/dev/zero as labels") << run + QStringList {"--labels", "/dev/zero"} << "/dev/zero";
        QTest::newRow("/dev/zero as the config") << quantize + QStringList {"--config", "/dev/zero"} << "/dev/zero";
        QTest::newRow("short bias folding BN: run")
            << QStringList {"run", "FILE:bias-bn.onnx", "--data", "random:2"} << "\"conv\"";
        QTest::newRow("short bias folding BN: quantize")
            << QStringList {"quantize", "FILE:bias-bn.onnx", "--data", "random:2", "--calib-limit", "2"} << "\"conv\"";
        QTest::newRow("short bias under --cle")
            << QStringList {"quantize", "FILE:bias-cle.onnx", "--data", "random:2", "--calib-limit", "2", "--cle"}
            << "\"conv\"";
    }

    void badInput()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, mentions);
        for (QString& a : args)
            if (a.startsWith("FILE:"))
                a = path(a.mid(5));
        const qs::test::CliResult r = cli(args, 60000);
        QVERIFY2(r.exitCode == 1, qPrintable(QString("exit %1: %2").arg(r.exitCode).arg(QString(r.err))));
        // Progress lines end in \r; the error is the one line after them.
        const QByteArray err = r.err.mid(r.err.lastIndexOf('\r') + 1).trimmed();
        QVERIFY2(!err.isEmpty() && !err.contains('\n'), r.err.constData());
        QVERIFY2(err.contains(mentions.toUtf8()), r.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestCliBadInput)
#include "test_cli_bad_input.moc"
