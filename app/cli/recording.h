// Recording CLI work in the experiment store (--db): the store named by --db. Model and
// dataset rows and runRecorded (the run row follows the work it records): record/recording.h.
#pragma once

#include "cli/args.h"
#include "record/recording.h"
#include "store/store.h"

#include <optional>
#include <string>

namespace qs::cli {

// The store named by --db, or nullopt when --db is absent.
std::optional<Store> storeFromArgs(const Args& args);

} // namespace qs::cli
