// A small RAII wrapper over SQLite's C API, private to core/store: a connection,
// prepared statements and transactions. Every error becomes a qs::Error naming
// the database file and what was being done.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qs::sqlite {

// One connection. Not shared between threads (opened with SQLITE_OPEN_NOMUTEX).
class Db {
public:
    Db() = default;
    // `flags` are SQLITE_OPEN_* flags; the path is also the name used in errors.
    Db(const std::string& path, int flags, int busyTimeoutMs);
    ~Db();
    Db(Db&& other) noexcept;
    Db& operator=(Db&& other) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    sqlite3* handle() const { return db_; }
    const std::string& path() const { return path_; }
    int busyTimeoutMs() const { return busyTimeoutMs_; }

    // Runs one or more statements that return no rows.
    void exec(std::string_view sql, std::string_view doing = "executing SQL");
    int64_t lastInsertId() const { return sqlite3_last_insert_rowid(db_); }
    int changes() const { return sqlite3_changes(db_); }

    // Throws an Error for SQLite result `rc`: "<file>: <doing>: <what went wrong>".
    [[noreturn]] void raise(int rc, std::string_view doing) const;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
    int busyTimeoutMs_ = 0;
};

// A prepared statement. Parameters are 1-based, as in SQLite.
class Stmt {
public:
    // `doing` completes error messages: "<file>: <doing>: <what went wrong>".
    Stmt(const Db& db, std::string_view sql, std::string_view doing = "running a query");
    ~Stmt();
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    Stmt& bind(int i, std::nullptr_t);
    Stmt& bind(int i, int64_t v);
    Stmt& bind(int i, int v) { return bind(i, int64_t(v)); }
    Stmt& bind(int i, double v);
    Stmt& bind(int i, std::string_view v);
    Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Stmt& bindBlob(int i, const std::vector<uint8_t>& v);
    template <typename T>
    Stmt& bind(int i, const std::optional<T>& v)
    {
        return v ? bind(i, *v) : bind(i, nullptr);
    }
    // Binds every argument in order, starting at parameter 1.
    template <typename... Args>
    Stmt& bindAll(const Args&... args)
    {
        int i = 0;
        (bind(++i, args), ...);
        return *this;
    }

    // Steps once: true when a row is available, false when done.
    bool step();
    // Steps a statement that returns no rows (or ignores them) to completion.
    void run();
    void reset();

    bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const { return sqlite3_column_double(stmt_, col); }
    std::string text(int col) const;
    std::vector<uint8_t> blob(int col) const;
    std::optional<int64_t> optInt64(int col) const;
    std::optional<double> optReal(int col) const;
    std::optional<std::string> optText(int col) const;

private:
    const Db& db_;
    std::string doing_;
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE (takes the write lock up front, so a busy database fails at the
// start instead of half way) ... commit(); rolled back if destroyed uncommitted.
class Transaction {
public:
    explicit Transaction(Db& db, std::string_view doing);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Db& db_;
    std::string doing_;
    bool open_ = false;
};

} // namespace qs::sqlite
