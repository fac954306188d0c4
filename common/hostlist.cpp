#include "common/hostlist.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace bc {
namespace {

// A node index of at most 8 digits.
std::optional<uint64_t> index_number(std::string_view s) {
  if (s.empty() || s.size() > 8 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

constexpr size_t kMaxHosts = 65536;

}  // namespace

std::variant<std::vector<std::string>, std::string> expand_hostlist(std::string_view text) {
  std::vector<std::string> hosts;
  const auto bad = [&](const std::string& why) { return "invalid node list '" + std::string(text) + "': " + why; };
  size_t i = 0;
  while (i < text.size()) {
    // One host expression runs to the next comma outside brackets.
    size_t end = i;
    int depth = 0;
    for (; end < text.size(); ++end) {
      if (text[end] == '[') ++depth;
      else if (text[end] == ']') --depth;
      else if (text[end] == ',' && depth == 0) break;
      if (depth < 0 || depth > 1) return bad("unbalanced or nested brackets");
    }
    if (depth != 0) return bad("unbalanced brackets");
    const std::string_view expr = text.substr(i, end - i);
    if (expr.empty()) return bad("empty item");
    const size_t open = expr.find('[');
    if (open == std::string_view::npos) {
      if (hosts.size() == kMaxHosts) return bad("more than " + std::to_string(kMaxHosts) + " nodes");
      hosts.emplace_back(expr);
    } else {
      const size_t close = expr.find(']');
      if (close < open || expr.find('[', open + 1) != std::string_view::npos) return bad("one range per name");
      const std::string prefix(expr.substr(0, open));
      const std::string suffix(expr.substr(close + 1));
      const std::string_view inside = expr.substr(open + 1, close - open - 1);
      for (size_t at = 0; at <= inside.size();) {
        const size_t comma = std::min(inside.find(',', at), inside.size());
        const std::string range(inside.substr(at, comma - at));
        at = comma + 1;
        if (range.empty()) return bad("empty range");
        const size_t dash = range.find('-');
        const std::string lo_text = range.substr(0, dash);
        const std::string hi_text = dash == std::string::npos ? lo_text : range.substr(dash + 1);
        const auto lo = index_number(lo_text), hi = index_number(hi_text);
        if (!lo || !hi || *hi < *lo) return bad("range '" + range + "'");
        if (*hi - *lo > 65535) return bad("range '" + range + "' is too large");
        // Every range may be small and the list still huge ("n[0-60000,0-60000,...]"): bound the whole.
        if (hosts.size() + (*hi - *lo + 1) > kMaxHosts) return bad("more than " + std::to_string(kMaxHosts) + " nodes");
        for (uint64_t n = *lo; n <= *hi; ++n) {
          std::string digits = std::to_string(n);
          if (digits.size() < lo_text.size()) digits.insert(0, lo_text.size() - digits.size(), '0');  // n[01-10]
          hosts.push_back(prefix + digits + suffix);
        }
      }
    }
    i = end + 1;
    if (end + 1 == text.size() && text[end] == ',') return bad("empty item");
  }
  if (hosts.empty()) return bad("empty");
  return hosts;
}

}  // namespace bc
