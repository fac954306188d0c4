// Slurm's special step ids (slurm.h), kept here so every component names and prints them the same way.
#pragma once

#include <cstdint>
#include <string>

namespace bc::slurm {

inline constexpr uint32_t kStepBatch = 0xfffffffbU;
inline constexpr uint32_t kStepExtern = 0xfffffffcU;
inline constexpr uint32_t kStepInteractive = 0xfffffffaU;
inline constexpr uint32_t kStepUnknown = 0xffffffffU;

// "batch", "extern", "interactive", "?" for an unknown step, else the number.
inline std::string step_name(uint32_t step) {
  switch (step) {
    case kStepBatch: return "batch";
    case kStepExtern: return "extern";
    case kStepInteractive: return "interactive";
    case kStepUnknown: return "?";
    default: return std::to_string(step);
  }
}

}  // namespace bc::slurm
