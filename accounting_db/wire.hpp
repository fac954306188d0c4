// accounting_db: the wire format that ships node batches to the central daemon bcd.
//
// A batch (one monitor tick, store::Batch) is encoded on its own; a bundle is what one HTTP request to
// /api/v1/ingest carries: several encoded batches, each with its id (node, job, monitor, seq). Both start
// with a format version, and decoding checks every length against the bytes that are left, so a malformed
// or hostile body ends in WireError, never in a crash or a huge allocation.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::wire {

// 1: job, job sample, processes. 2: files and connections (eBPF events) follow the processes.
// 3: a process travels as its numbers and its identity, still encoded (codec::append_process_identity),
//    and a sample that repeats its record's counters sends only its time. The identity's last fields come in
//    pairs that a node built before them does not send: the most threads and the Slurm task, then the GPU
//    memory peak and SM time. Version 2 is still
//    read: an upgraded node's outbox may hold batches spooled before.
// 4: each sample ends with its thread count. Versions 2 and 3 are still read, their samples without one.
// 5: GPU samples: each process's (after its sample), then the job's GPUs' (after the connections). Earlier
//    versions are still read, without them.
inline constexpr uint32_t kBatchVersion = 5;
inline constexpr char kBundleMagic[4] = {'B', 'C', 'W', '1'};

class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string encode_batch(const store::Batch& batch);
// Decoded: every field of every record is filled in. Deferred (bcd): a version 3 process's identity is
// checked but left encoded in ProcessUpdate::encoded_identity, pointing into `bytes`, for the store to
// decode only if it must rewrite the record; `bytes` must then outlive the write.
enum class Identity { Decoded, Deferred };
// Throws WireError naming what was wrong. `previous`: with Deferred, the batch decoded before this one from
// the same body (a node's ticks repeat their processes' identities); an identity whose bytes equal those of
// the process at the same place in it was checked then, and is not checked again.
store::Batch decode_batch(std::string_view bytes, Identity identity = Identity::Decoded,
                          const store::Batch* previous = nullptr);

// The batches stay encoded in a bundle: bcd decodes each one after checking its id.
std::string encode_bundle(const std::vector<store::SpooledBatch>& batches);
std::vector<store::SpooledBatch> decode_bundle(std::string_view bytes);
// The same without copying each batch's bytes: the views point into `bytes`, which must outlive them.
struct BatchView {
  store::BatchId id;
  std::string_view wire;
};
std::vector<BatchView> decode_bundle_views(std::string_view bytes);

}  // namespace bc::wire
