// gzip for bcd's answers: a cached view is compressed once and sent compressed to every client that
// accepts it (browsers do), which cuts the bytes of number columns and repeated JSON keys several fold.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bc::bcd {

// The gzip (RFC 1952) form of data. Throws std::runtime_error if zlib fails.
std::string gzip(std::string_view data);

// Whether an Accept-Encoding header value allows gzip ("gzip" or "*" without q=0).
bool accepts_gzip(const std::optional<std::string>& accept_encoding);

}  // namespace bc::bcd
