#include "common/json.hpp"

#include <cstdint>
#include <cstring>

namespace bc::json {

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0U; };
  const auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned c = byte(i);
    return i < s.size() && c >= lo && c <= hi;
  };
  for (size_t i = 0; i < s.size();) {
    const unsigned c = byte(i);
    size_t len = 0;
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = cont(i + 1) ? 2 : 0;
    else if (c == 0xE0) len = cont(i + 1, 0xA0, 0xBF) && cont(i + 2) ? 3 : 0;
    else if (c == 0xED) len = cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (c == 0xF0) len = cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c >= 0xF1 && c <= 0xF3) len = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c == 0xF4) len = cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

cJSON* string(std::string_view s) { return checked(cJSON_CreateString(valid_utf8(s).c_str())); }

std::string print(const cJSON* item, bool pretty, size_t size_hint) {
  if (size_hint > 0 && size_hint < INT32_MAX - 64) {  // straight into the string, when the hint was enough
    std::string out(size_hint + 64, '\0');
    if (cJSON_PrintPreallocated(const_cast<cJSON*>(item), out.data(), static_cast<int>(out.size()), pretty ? 1 : 0)) {
      out.resize(std::strlen(out.data()));
      return out;
    }
  }
  const std::unique_ptr<char, decltype(&cJSON_free)> text(pretty ? cJSON_Print(item) : cJSON_PrintUnformatted(item),
                                                          &cJSON_free);
  if (!text) throw std::bad_alloc();
  const size_t length = std::strlen(text.get());
  std::string out;
  out.reserve(length + 1);
  out.append(text.get(), length);
  return out;
}

}  // namespace bc::json
