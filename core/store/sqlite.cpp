// The SQLite RAII wrapper: errors translated into messages a user can act on.
#include "store/sqlite.h"

#include "util/error.h"

#include <utility>

namespace qs::sqlite {

Db::Db(const std::string& path, int flags, int busyTimeoutMs) : path_(path), busyTimeoutMs_(busyTimeoutMs)
{
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        fail(path, ": cannot open the database: ", msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busyTimeoutMs);
}

Db::~Db()
{
    if (db_)
        sqlite3_close_v2(db_);
}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)), busyTimeoutMs_(other.busyTimeoutMs_)
{
}

Db& Db::operator=(Db&& other) noexcept
{
    if (this != &other) {
        if (db_)
            sqlite3_close_v2(db_);
        db_ = std::exchange(other.db_, nullptr);
        path_ = std::move(other.path_);
        busyTimeoutMs_ = other.busyTimeoutMs_;
    }
    return *this;
}

void Db::exec(std::string_view sql, std::string_view doing)
{
    std::string text(sql);
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        raise(rc, doing);
}

void Db::raise(int rc, std::string_view doing) const
{
    const std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_LOCKED:
        fail(path_, ": ", doing, ": a table is locked by another statement (", detail, ")");
    case SQLITE_BUSY:
        fail(path_, ": ", doing, ": the database is locked by another connection (gave up after ", busyTimeoutMs_,
             " ms)");
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        fail(path_, ": ", doing, ": the file is corrupt or not an SQLite database (", detail, ")");
    case SQLITE_READONLY:
        fail(path_, ": ", doing, ": the database is read-only (", detail, ")");
    case SQLITE_CANTOPEN:
        fail(path_, ": ", doing, ": cannot open the file (", detail, ")");
    case SQLITE_FULL:
        fail(path_, ": ", doing, ": the disk is full");
    default:
        fail(path_, ": ", doing, ": ", detail);
    }
}

Stmt::Stmt(const Db& db, std::string_view sql, std::string_view doing) : db_(db), doing_(doing)
{
    int rc = sqlite3_prepare_v2(db.handle(), sql.data(), int(sql.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK)
        db.raise(rc, doing_);
}

Stmt::~Stmt()
{
    sqlite3_finalize(stmt_);
}

Stmt& Stmt::bind(int i, std::nullptr_t)
{
    sqlite3_bind_null(stmt_, i);
    return *this;
}

Stmt& Stmt::bind(int i, int64_t v)
{
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
}

Stmt& Stmt::bind(int i, double v)
{
    sqlite3_bind_double(stmt_, i, v); // NaN is stored as NULL by SQLite
    return *this;
}

Stmt& Stmt::bind(int i, std::string_view v)
{
    sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}

Stmt& Stmt::bindBlob(int i, const std::vector<uint8_t>& v)
{
    sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
}

bool Stmt::step()
{
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    // Reset so that a failed statement does not keep a read transaction open.
    sqlite3_reset(stmt_);
    db_.raise(rc, doing_);
}

void Stmt::run()
{
    while (step()) {
    }
}

void Stmt::reset()
{
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

std::string Stmt::text(int col) const
{
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, std::size_t(sqlite3_column_bytes(stmt_, col))) : std::string();
}

std::vector<uint8_t> Stmt::blob(int col) const
{
    auto p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
    return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(stmt_, col)) : std::vector<uint8_t>();
}

std::optional<int64_t> Stmt::optInt64(int col) const
{
    return isNull(col) ? std::nullopt : std::optional<int64_t>(int64(col));
}

std::optional<double> Stmt::optReal(int col) const
{
    return isNull(col) ? std::nullopt : std::optional<double>(real(col));
}

std::optional<std::string> Stmt::optText(int col) const
{
    return isNull(col) ? std::nullopt : std::optional<std::string>(text(col));
}

Transaction::Transaction(Db& db, std::string_view doing) : db_(db), doing_(doing)
{
    db_.exec("BEGIN IMMEDIATE", doing_);
    open_ = true;
}

Transaction::~Transaction()
{
    if (open_)
        sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit()
{
    db_.exec("COMMIT", doing_);
    open_ = false;
}

} // namespace qs::sqlite
