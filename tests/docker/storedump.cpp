// Test helper: prints one key's records from a node store as `bcacct --json` would (the same formatter),
// accepting any 64-bit key. bcacct's -j takes only 32-bit Slurm job ids for now, so container keys
// ((1<<63) | short id) go through here. Also accepts a 12-hex short id instead of the key.
//
//   bc-docker-storedump STORE KEY|SHORT_ID
// Exit status: 0 found, 1 not found, 2 usage, 3 store error.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "accounting_db/store.hpp"
#include "common/container_key.hpp"
#include "sacct_ext/job_source.hpp"
#include "sacct_ext/report.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bc-docker-storedump STORE KEY|SHORT_ID\n");
    return 2;
  }
  const std::string id = argv[2];
  uint64_t key = 0;
  if (id.size() == bc::container::kShortIdLength && id.find_first_not_of("0123456789abcdef") == std::string::npos) {
    key = *bc::container::container_key(id);
  } else {
    char* end = nullptr;
    key = std::strtoull(id.c_str(), &end, 10);
    if (id.empty() || *end) {
      std::fprintf(stderr, "bc-docker-storedump: '%s' is neither a key nor a short id\n", id.c_str());
      return 2;
    }
  }
  try {
    auto source = bc::report::open_store_source(argv[1]);
    auto job = source->load(key);
    if (!job) {
      std::fprintf(stderr, "bc-docker-storedump: key %llu not found in %s\n", static_cast<unsigned long long>(key),
                   source->describe().c_str());
      return 1;
    }
    std::fputs(bc::report::format_json(*job).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bc-docker-storedump: %s\n", e.what());
    return 3;
  }
}
