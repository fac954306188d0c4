// Internal to accounting_db: the retention a store instance works with.
#pragma once

#include "accounting_db/store.hpp"

namespace bc::store {

// Defaults, then options.config_path (a missing file is fine), then BC_RETENTION_* and BC_STORE_GROUP from
// the environment, then options.retention. Throws StoreError on unknown keys, bad values or an
// inconsistent result.
StoreConfig effective_config(const OpenOptions& options);

}  // namespace bc::store
