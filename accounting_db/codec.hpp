// Internal to accounting_db: value and key encoding. Not part of the public header.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace bc::store::codec {

// Appends LEB128 varints and length-prefixed strings; values stay small because most fields are
// small numbers.
class Encoder {
 public:
  void u64(uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
  }
  void i64(int64_t v) { u64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void str(std::string_view s) {
    u64(s.size());
    bytes_.append(s);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : bytes_(bytes) {}
  uint64_t u64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) throw StoreError("corrupt record: truncated varint");
      auto b = static_cast<uint8_t>(bytes_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw StoreError("corrupt record: varint too long");
  }
  uint32_t u32() {
    uint64_t v = u64();
    if (v > UINT32_MAX) throw StoreError("corrupt record: value out of range");
    return static_cast<uint32_t>(v);
  }
  int64_t i64() {
    uint64_t v = u64();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  std::string str() {
    uint64_t n = u64();
    if (n > bytes_.size() - pos_) throw StoreError("corrupt record: string overruns value");
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

// Fixed-width big-endian key builder.
class Key {
 public:
  Key& u8(uint8_t v) { return put(v, 1); }
  Key& u32(uint32_t v) { return put(v, 4); }
  Key& u64(uint64_t v) { return put(v, 8); }
  const std::string& bytes() const { return bytes_; }

 private:
  Key& put(uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string bytes_;
};

inline uint64_t read_be(std::string_view bytes, size_t offset, int width) {
  if (offset + static_cast<size_t>(width) > bytes.size()) throw StoreError("corrupt key: too short");
  uint64_t v = 0;
  for (int i = 0; i < width; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[offset + static_cast<size_t>(i)]);
  return v;
}

std::string encode_job(const JobRecord& job);
JobRecord decode_job(std::string_view value);
std::string encode_process(const ProcessRecord& p);
ProcessRecord decode_process(std::string_view value);
std::string encode_sample(const Sample& s);
Sample decode_sample(std::string_view value);

}  // namespace bc::store::codec
