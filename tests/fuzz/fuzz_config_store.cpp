// The store's retention config parser (accounting_db/config.cpp) on a store.conf. A bad file must end in
// StoreError and nothing else.
#include <cstdint>
#include <string_view>

#include "accounting_db/store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)bc::store::parse_store_config(text, "store.conf");
  } catch (const bc::store::StoreError&) {
  }
  return 0;
}
