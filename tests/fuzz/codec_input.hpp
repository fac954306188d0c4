// The layout of fuzz_codec's inputs, shared with make_seeds.cpp which writes its seeds: a first byte
// naming the record kind (modulo Kind::Count), then for points and chunks a fixed header of big-endian
// 64-bit fields, then the stored value.
//   Points: first_may_equal_origin (bit 0), origin time, cpu, rss, read, write; then encoded points
//   Chunk:  chunk start; then the chunk value
#pragma once

#include <cstdint>

namespace bc::fuzz {

enum class CodecKind : uint8_t {
  Job,
  Process,
  ProcessIdentity,
  File,
  Connection,
  Sample,
  Points,
  Chunk,
  Open,
  Buckets,
  JobState,
  ProcessPack,
  Count
};

}  // namespace bc::fuzz
