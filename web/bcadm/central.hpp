// bcadm's central commands (apikey, token, ship); bcadm.cpp dispatches to them.
#pragma once

#include <string>

namespace bc::admin {

// argv[first] is the group ("apikey", "token" or "ship"). store_path: the --store given before the group
// (the node store's default for ship when empty). central_store: where API keys live by default.
int run_central(int argc, char** argv, int first, const std::string& store_path, const std::string& central_store,
                const std::string& bcd_config);

}  // namespace bc::admin
