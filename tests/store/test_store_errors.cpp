// Files the store must refuse with a clear error naming the file, leaving them
// exactly as they were: corrupt, not a store, from a newer version, read-only,
// locked beyond the timeout; and what a read-only open may and may not do.
#include "store/schema.h"
#include "store/store.h"
#include "util/error.h"

#include "store_test_util.h"

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/stat.h>
#include <unistd.h>

using namespace qs;
using namespace qs::test;

namespace {

// A store with one finished run, closed (so its WAL is checkpointed away).
void makeStore(const std::string& path)
{
    Store store = Store::open(path);
    const int64_t id = store.beginRun({store.upsertModel(sampleModel("m")), {}, RunKind::Quantization});
    store.addLayerResults(id, {sampleLayer("conv1", 4, 20)});
    store.finishRun(id, RunState::Done, sampleMetrics(0.75));
}

} // namespace

class TestStoreErrors : public QObject {
    Q_OBJECT

private slots:
    void refusesBadFiles_data()
    {
        QTest::addColumn<QString>("setup");
        QTest::addColumn<bool>("readOnly");
        QTest::addColumn<QString>("message");
        QTest::newRow("garbage") << "garbage" << false << "corrupt or not an SQLite database";
        QTest::newRow("garbage, read-only") << "garbage" << true << "corrupt or not an SQLite database";
        QTest::newRow("clobbered header") << "clobbered" << false << "corrupt or not an SQLite database";
        QTest::newRow("another program's db") << "foreign" << false << "not a QuantStudio store";
        QTest::newRow("newer version") << "newer" << false << QString("schema version 999, newer than this program's %1").arg(currentSchemaVersion());
        QTest::newRow("newer version, read-only") << "newer" << true << "schema version 999, newer";
        QTest::newRow("read-only file") << "chmod" << false << "the file is read-only";
        QTest::newRow("a folder") << "folder" << false << "is a folder";
        QTest::newRow("missing, read-only") << "missing" << true << "no store at this path";
    }

    void refusesBadFiles()
    {
        QFETCH(QString, setup);
        QFETCH(bool, readOnly);
        QFETCH(QString, message);
        QTemporaryDir dir;
        const QString qpath = dir.filePath("studio.db");
        const std::string path = qpath.toStdString();
        if (setup == "garbage") {
            QFile f(qpath);
            QVERIFY(f.open(QIODevice::WriteOnly));
            QByteArray bytes(8192, 0);
            for (int i = 0; i < bytes.size(); ++i)
                bytes[i] = char((i * 131 + 7) ^ (i >> 3));
            f.write(bytes);
        } else if (setup == "clobbered") {
            makeStore(path);
            QFile f(qpath);
            QVERIFY(f.open(QIODevice::ReadWrite));
            f.write(QByteArray(100, '\x5a'));
        } else if (setup == "foreign") {
            RawDb raw(qpath);
            QCOMPARE(raw.exec("CREATE TABLE contacts(name TEXT); INSERT INTO contacts VALUES('x')"), SQLITE_OK);
        } else if (setup == "newer") {
            makeStore(path);
            RawDb raw(qpath);
            QCOMPARE(raw.exec("PRAGMA user_version = 999"), SQLITE_OK);
        } else if (setup == "chmod") {
            makeStore(path);
            QVERIFY(::chmod(path.c_str(), 0444) == 0);
        } else if (setup == "folder") {
            QVERIFY(QDir(dir.path()).mkdir("studio.db"));
        }
        const QByteArray hashBefore = fileHash(qpath);
        const QStringList listingBefore = dirListing(dir.path());

        try {
            Store::open(path, {.mode = readOnly ? OpenMode::ReadOnly : OpenMode::ReadWrite, .busyTimeoutMs = 200});
            QFAIL("expected an error");
        } catch (const Error& e) {
            const QString what = e.what();
            QVERIFY2(what.startsWith(qpath + ": "), e.what()); // names the file
            QVERIFY2(what.contains(message), e.what());
            QVERIFY2(!what.contains('\n'), e.what()); // one line for the CLI
        }
        QCOMPARE(fileHash(qpath), hashBefore);
        QCOMPARE(dirListing(dir.path()), listingBefore);
        ::chmod(path.c_str(), 0644);
    }

    // Read-only opens read everything and write nothing, even where the OS
    // would allow writing.
    void readOnlyOpenNeverWrites()
    {
        QTemporaryDir dir;
        const QString qpath = dir.filePath("studio.db");
        const std::string path = qpath.toStdString();
        makeStore(path);
        QVERIFY(::chmod(path.c_str(), 0444) == 0);
        const QByteArray before = fileHash(qpath);
        {
            Store store = Store::open(path, {.mode = OpenMode::ReadOnly});
            QVERIFY(store.readOnly());
            const auto runs = store.runs();
            QCOMPARE(runs.size(), std::size_t(1));
            QCOMPARE(store.layerResults(runs[0].id).size(), std::size_t(1));
            QCOMPARE(store.integrityCheck(), std::string("ok"));
            auto expectRefused = [&](auto&& write) {
                try {
                    write();
                    QFAIL("a read-only store must refuse writes");
                } catch (const Error& e) {
                    QVERIFY2(QString(e.what()).startsWith(qpath + ": "), e.what());
                    QVERIFY2(QString(e.what()).contains("opened read-only"), e.what());
                }
            };
            expectRefused([&] { store.upsertModel(sampleModel("n")); });
            expectRefused([&] { store.beginRun({runs[0].modelId, {}, RunKind::Inference}); });
            expectRefused([&] { store.setNote(runs[0].id, "x"); });
            expectRefused([&] { store.deleteRun(runs[0].id); });
            expectRefused([&] { store.recoverInterrupted(); });
        }
        QCOMPARE(fileHash(qpath), before);
        ::chmod(path.c_str(), 0644);
    }

    // Another connection holds the write lock: opening still works (WAL readers
    // do not wait), but recording gives up after the timeout, naming the file,
    // and leaves nothing behind.
    void writeLockedBeyondTimeout_data()
    {
        QTest::addColumn<QString>("operation");
        QTest::newRow("beginRun") << "beginRun";
        QTest::newRow("upsertModel") << "upsertModel";
        QTest::newRow("setNote") << "setNote";
    }

    void writeLockedBeyondTimeout()
    {
        QFETCH(QString, operation);
        QTemporaryDir dir;
        const QString qpath = dir.filePath("studio.db");
        const std::string path = qpath.toStdString();
        makeStore(path);
        RawDb holder(qpath);
        QCOMPARE(holder.exec("BEGIN IMMEDIATE; UPDATE models SET name = 'held'"), SQLITE_OK);

        Store store = Store::open(path, {.busyTimeoutMs = 300});
        QCOMPARE(store.runs().size(), std::size_t(1)); // reading is not blocked
        const RunRecord existing = store.runs()[0];
        QElapsedTimer timer;
        timer.start();
        try {
            if (operation == "beginRun")
                store.beginRun({existing.modelId, {}, RunKind::Inference});
            else if (operation == "upsertModel")
                store.upsertModel(sampleModel("other"));
            else
                store.setNote(existing.id, "blocked");
            QFAIL("expected a lock timeout");
        } catch (const Error& e) {
            const QString what = e.what();
            QVERIFY2(what.startsWith(qpath + ": "), e.what());
            QVERIFY2(what.contains("locked by another connection (gave up after 300 ms)"), e.what());
        }
        QVERIFY2(timer.elapsed() >= 250 && timer.elapsed() < 5000, qPrintable(QString::number(timer.elapsed())));
        QCOMPARE(holder.exec("ROLLBACK"), SQLITE_OK);

        RawDb check(qpath, true);
        QCOMPARE(check.integer("SELECT count(*) FROM runs"), int64_t(1));
        QCOMPARE(check.integer("SELECT count(*) FROM models"), int64_t(1));
        QCOMPARE(check.query("SELECT note FROM runs"), QString(""));
        // Once the lock is gone the same Store works.
        store.setNote(existing.id, "free again");
        QCOMPARE(store.run(existing.id).note, std::string("free again"));
    }

    // A connection in exclusive locking mode keeps even readers out: the open
    // itself times out, names the file, and changes nothing.
    void exclusivelyLockedBeyondTimeout()
    {
        QTemporaryDir dir;
        const QString qpath = dir.filePath("studio.db");
        const std::string path = qpath.toStdString();
        makeStore(path);
        RawDb holder(qpath);
        QCOMPARE(holder.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE models SET name = 'held'"),
                 SQLITE_OK);
        for (OpenMode mode : {OpenMode::ReadWrite, OpenMode::ReadOnly}) {
            QElapsedTimer timer;
            timer.start();
            try {
                Store::open(path, {.mode = mode, .busyTimeoutMs = 300});
                QFAIL("expected a lock timeout");
            } catch (const Error& e) {
                QVERIFY2(QString(e.what()).startsWith(qpath + ": "), e.what());
                QVERIFY2(QString(e.what()).contains("locked"), e.what());
            }
            QVERIFY2(timer.elapsed() >= 250 && timer.elapsed() < 5000, qPrintable(QString::number(timer.elapsed())));
        }
        QCOMPARE(holder.exec("ROLLBACK"), SQLITE_OK);
        QCOMPARE(holder.query("SELECT name FROM models"), QString("m"));
    }

    // A folder where no store can be created, for any user: root bypasses folder
    // permissions, so the rows that must run in CI (as root) use a folder that is a
    // regular file and a file system that holds no new files (/proc); the permission
    // row is added only for an unprivileged user.
    void unwritableFolder_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::newRow("folder is a regular file") << "file";
        QTest::newRow("folder on /proc") << "proc";
        if (::geteuid() != 0)
            QTest::newRow("folder without write permission") << "mode";
    }

    void unwritableFolder()
    {
        QFETCH(QString, kind);
        QTemporaryDir dir;
        QString folder = dir.filePath("ro");
        if (kind == "file") {
            QFile f(folder);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("not a folder");
        } else if (kind == "proc") {
            folder = "/proc/self";
        } else {
            QVERIFY(QDir(dir.path()).mkdir("ro"));
            QVERIFY(::chmod(folder.toUtf8().constData(), 0555) == 0);
        }
        const QString path = folder + "/studio.db";
        try {
            Store::open(path.toStdString());
            QFAIL("expected an error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).startsWith(path + ": "), e.what());
        }
        QVERIFY(!QFileInfo::exists(path));
        if (kind == "mode")
            ::chmod(folder.toUtf8().constData(), 0755);
    }
};

QTEST_GUILESS_MAIN(TestStoreErrors)
#include "test_store_errors.moc"
