// The wire decoder (accounting_db/wire.*) on what bcd receives in an ingest body: a bundle, and each batch
// in it decoded both ways (identities decoded, and left encoded as bcd does). Malformed bytes must end in
// WireError and nothing else. A batch that decodes is re-encoded; that encoding must decode again and
// encode to the same bytes, so whatever a node spools, bcd reads back unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "accounting_db/wire.hpp"

namespace {

using bc::wire::Identity;
using bc::wire::WireError;

void check_reencoding(std::string_view bytes) {
  std::string first;
  try {
    first = bc::wire::encode_batch(bc::wire::decode_batch(bytes));
  } catch (const WireError&) {
    return;
  }
  std::string second;
  try {
    second = bc::wire::encode_batch(bc::wire::decode_batch(first));
  } catch (const WireError& e) {
    std::fprintf(stderr, "a re-encoded batch does not decode: %s\n", e.what());
    std::abort();
  }
  if (second != first) {
    std::fprintf(stderr, "a re-encoded batch encodes differently the second time\n");
    std::abort();
  }
  // Decoded as bcd does, identities stay as they were sent: re-encoding keeps the bytes.
  if (bc::wire::encode_batch(bc::wire::decode_batch(first, Identity::Deferred)) != first) {
    std::fprintf(stderr, "a batch decoded with deferred identities re-encodes differently\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The body as a bundle, decoded as bcd's ingest does.
  try {
    bc::store::Batch previous;
    bool have_previous = false;
    for (const auto& view : bc::wire::decode_bundle_views(bytes)) {
      try {
        bc::store::Batch batch =
            bc::wire::decode_batch(view.wire, Identity::Deferred, have_previous ? &previous : nullptr);
        previous = std::move(batch);
        have_previous = true;
      } catch (const WireError&) {
        have_previous = false;
      }
      check_reencoding(view.wire);
    }
    (void)bc::wire::decode_bundle(bytes);
  } catch (const WireError&) {
  }
  // The body as one batch (what an outbox entry holds).
  check_reencoding(bytes);
  return 0;
}
