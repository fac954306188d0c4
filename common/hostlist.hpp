// Slurm's hostlist expressions, as SLURM_JOB_NODELIST and sacct -N give them.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bc {

// "n[01-03,07],login1" -> n01 n02 n03 n07 login1. One bracket per name, ranges of at most 65536 and at most
// 65536 names in all; anything else is the error's text (which quotes the list).
std::variant<std::vector<std::string>, std::string> expand_hostlist(std::string_view text);

}  // namespace bc
