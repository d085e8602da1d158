// Shared by the store tests: sample records, and raw SQLite access that checks the
// file independently of the Store class under test.
#pragma once

#include "store/records.h"
#include "util/hash.h"

#include <sqlite3.h>

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QString>
#include <QtTest>

#include <stdexcept>
#include <string>
#include <vector>

namespace qs::test {

inline ModelRecord sampleModel(const std::string& name, const std::string& path = "/models/m.onnx")
{
    ModelRecord m;
    m.hash = sha256Hex("model:" + name);
    m.name = name;
    m.path = path;
    m.sizeBytes = 123456;
    m.opCounts = {{"Conv", 2}, {"Gemm", 1}};
    m.params = 30000;
    return m;
}

inline DatasetRecord sampleDataset(const std::string& path = "/data/t10k-images-idx3-ubyte")
{
    return {0, "idx", path, 10000, sha256Hex("dataset:" + path), 0};
}

inline LayerResult sampleLayer(const std::string& name, int weightBits, double sqnrDb, int position = 0)
{
    LayerResult l;
    l.layer = name;
    l.op = name.rfind("fc", 0) == 0 ? "Gemm" : "Conv";
    l.weightBits = weightBits;
    l.actBits = 8;
    l.granularity = "per-channel";
    l.symmetric = true;
    l.scales = {{"min", 0.001}, {"max", 0.05}, {"mean", 0.01}, {"count", 16}};
    l.sqnrDb = sqnrDb;
    l.sensitivity = 40.0 - sqnrDb;
    l.sensitivityDetail = {{"w4", sqnrDb - 10}, {"w8", sqnrDb}};
    l.sizeBits = int64_t(weightBits) * 1000 + position;
    l.weightHist = StoredHistogram{{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f}, {3, 400, 1u << 20, 7}};
    l.actHist = StoredHistogram{{0.0f, 2.0f, 6.0f}, {100000, 12}};
    l.weightClip = StoredRange{-0.9, 0.9};
    l.actClip = StoredRange{0.0, 5.5};
    l.extra = {{"rounding", "nearest"}};
    return l;
}

inline RunMetrics sampleMetrics(double top1)
{
    RunMetrics m;
    m.top1 = top1;
    m.sqnrDb = 31.5;
    m.cosine = 0.9993;
    m.top1Agreement = 0.988;
    m.kl = 0.0021;
    m.sizeBits = 245760;
    m.latencyMs = 1.75;
    m.extra = {{"perplexity", 12.5}, {"calibration_batches", 8}};
    return m;
}

// A raw connection to the file, not going through Store.
class RawDb {
public:
    explicit RawDb(const QString& path, bool readOnly = false)
    {
        const int flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        if (sqlite3_open_v2(path.toUtf8().constData(), &db_, flags, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw open failed: " + path.toStdString());
        sqlite3_busy_timeout(db_, 5000);
    }
    ~RawDb() { sqlite3_close_v2(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    // SQLite's result code; the error text in lastError().
    int exec(const std::string& sql)
    {
        char* err = nullptr;
        int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
        lastError_ = err ? err : "";
        sqlite3_free(err);
        return rc;
    }
    // Every row's columns as text, joined by '|', rows by '\n'.
    QString query(const std::string& sql)
    {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error("raw prepare failed: " + std::string(sqlite3_errmsg(db_)) + " in " + sql);
        QStringList rows;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            QStringList cols;
            for (int c = 0; c < sqlite3_column_count(st); ++c) {
                auto t = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
                cols << (t ? QString::fromUtf8(t) : QStringLiteral("NULL"));
            }
            rows << cols.join('|');
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            throw std::runtime_error("raw query failed: " + std::string(sqlite3_errmsg(db_)) + " in " + sql);
        return rows.join('\n');
    }
    int64_t integer(const std::string& sql) { return query(sql).toLongLong(); }
    const std::string& lastError() const { return lastError_; }
    sqlite3* handle() const { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::string lastError_;
};

inline QByteArray fileHash(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex();
}

inline QStringList dirListing(const QString& dir)
{
    return QDir(dir).entryList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot | QDir::Hidden, QDir::Name);
}

} // namespace qs::test
