// Internal to accounting_db: who may read a store. A store holds every job's commands and arguments, which
// carry passwords and tokens on real clusters, so it is its owner's alone, or its owner's and one
// configured group's (BC_STORE_GROUP).
#pragma once

#include <sys/types.h>

#include <string>

namespace bc::store {

// The mode for a new store directory and for LMDB's files as mdb_env_open creates them.
mode_t store_dir_mode(const std::string& group);
mode_t store_file_mode(const std::string& group);

// Gives the directory and its files those modes and the group, whatever they had (an upgrade from a store
// made 0755/0644). lock.mdb is also group-writable with a group: LMDB readers register in it. Where this
// process does not own the files (a writer that is not their owner) they are left as they are. Throws
// StoreError when the group does not exist or a file cannot be changed for another reason.
void make_store_private(const std::string& dir, const std::string& group);

}  // namespace bc::store
