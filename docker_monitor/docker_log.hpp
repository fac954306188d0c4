// bc-docker's log: one line per message on stderr, "<UTC time> bc-docker[<pid>]: [error: |warning: ]text".
// Components take a LogSink so that tests can capture what would be logged.
#pragma once

#include <functional>
#include <string>

namespace bc::docker {

enum class Level { Info, Warning, Error };
using LogSink = std::function<void(Level, const std::string&)>;

// Writes to stderr with the fixed prefix and flushes.
void log_to_stderr(Level level, const std::string& text);

}  // namespace bc::docker
