// The store's schema, versioned through PRAGMA user_version. Version N is reached
// from N-1 by migrations()[N-1]; a file is always moved forward to
// currentSchemaVersion() in one transaction, never backwards.
#pragma once

#include <string>
#include <vector>

namespace qs {

namespace sqlite {
class Db;
}

// 'QSDB': PRAGMA application_id of every store, so that another program's SQLite
// file is refused instead of being written into.
constexpr int kStoreApplicationId = 0x51534442;

struct Migration {
    int toVersion;
    std::string summary;
    std::string sql;
};

// In order: migrations()[i].toVersion == i + 1.
const std::vector<Migration>& migrations();
int currentSchemaVersion();

// Moves `db` from its user_version to `toVersion` in one IMMEDIATE transaction:
// either every step applies or the file is left as it was. Throws an Error naming
// the file and the failing step.
void migrateSchema(sqlite::Db& db, int toVersion);

// Creates a store file at an earlier schema version (for migration tests and for
// reproducing old files). Fails if `path` already exists.
void createStoreAtVersion(const std::string& path, int version);

} // namespace qs
