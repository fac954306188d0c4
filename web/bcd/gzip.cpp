#include "web/bcd/gzip.hpp"

#include <zlib.h>

#include <cctype>
#include <stdexcept>

namespace bc::bcd {

std::string gzip(std::string_view data) {
  z_stream z{};
  // windowBits 15 + 16 asks zlib for the gzip wrapper; level 1: most of the gain for JSON at a fraction of
  // the time, which matters for a running job's views (made again at every new sample).
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed");
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t written = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate did not finish");
  out.resize(written);
  return out;
}

bool accepts_gzip(const std::optional<std::string>& accept_encoding) {
  if (!accept_encoding) return false;
  // An explicit gzip item decides; else "*" does.
  std::optional<bool> gzip_item, star_item;
  const std::string& h = *accept_encoding;
  size_t start = 0;
  while (start < h.size()) {
    size_t end = h.find(',', start);
    if (end == std::string::npos) end = h.size();
    std::string item;
    for (size_t i = start; i < end; ++i)
      if (!std::isspace(static_cast<unsigned char>(h[i])))
        item += static_cast<char>(std::tolower(static_cast<unsigned char>(h[i])));
    start = end + 1;
    const size_t semi = item.find(';');
    const std::string coding = item.substr(0, semi);
    if (coding != "gzip" && coding != "*") continue;
    // q=0 (also written 0.0, 0.000) refuses the coding.
    const size_t q = semi == std::string::npos ? std::string::npos : item.find("q=", semi);
    const bool allowed = q == std::string::npos || item.find_first_not_of("0.", q + 2) != std::string::npos;
    (coding == "gzip" ? gzip_item : star_item) = allowed;
  }
  return gzip_item.value_or(star_item.value_or(false));
}

}  // namespace bc::bcd
