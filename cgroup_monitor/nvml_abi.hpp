// The part of NVIDIA's NVML C ABI (libnvidia-ml.so.1) the GPU sampler uses, declared here so that nothing
// is needed from NVIDIA to build: the types, return codes and signatures as NVML documents them. The fake
// NVML of the tests (tests/gpu/fake_nvml.cpp) implements the same declarations.
#pragma once

#include <cstdint>

namespace bc::nvml {

using Return = int;  // nvmlReturn_t
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorInvalidArgument = 2;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNoPermission = 4;
inline constexpr Return kErrorNotFound = 6;
inline constexpr Return kErrorInsufficientSize = 7;
inline constexpr Return kErrorDriverNotLoaded = 9;
inline constexpr Return kErrorGpuIsLost = 15;
inline constexpr Return kErrorUnknown = 999;

struct DeviceStruct;
using Device = DeviceStruct*;  // nvmlDevice_t: an opaque handle

struct Utilization {    // nvmlUtilization_t
  unsigned int gpu;     // % of the last sample period a kernel ran
  unsigned int memory;  // % of it device memory was read or written
};

struct Memory {  // nvmlMemory_t, bytes
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct ProcessInfoV1 {  // nvmlProcessInfo_v1_t: nvmlDeviceGetComputeRunningProcesses
  unsigned int pid;
  unsigned long long usedGpuMemory;
};

struct ProcessInfoV2 {  // nvmlProcessInfo_v2_t: nvmlDeviceGetComputeRunningProcesses_v2 and _v3
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

struct ProcessUtilizationSample {  // nvmlProcessUtilizationSample_t
  unsigned int pid;
  unsigned long long timeStamp;  // CPU time stamp, microseconds
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
};

// NVML_DEVICE_UUID_V2_BUFFER_SIZE
inline constexpr unsigned int kUuidBufferSize = 96;
// NVML_DEVICE_MIG_ENABLE
inline constexpr unsigned int kMigEnabled = 1;

extern "C" {
using InitFn = Return (*)();                                                       // nvmlInit_v2
using ShutdownFn = Return (*)();                                                   // nvmlShutdown
using ErrorStringFn = const char* (*)(Return);                                     // nvmlErrorString
using DeviceGetCountFn = Return (*)(unsigned int*);                                // nvmlDeviceGetCount_v2
using DeviceGetHandleByIndexFn = Return (*)(unsigned int, Device*);                // nvmlDeviceGetHandleByIndex_v2
using DeviceGetUuidFn = Return (*)(Device, char*, unsigned int);                   // nvmlDeviceGetUUID
using DeviceGetMinorNumberFn = Return (*)(Device, unsigned int*);                  // nvmlDeviceGetMinorNumber
using DeviceGetUtilizationRatesFn = Return (*)(Device, Utilization*);              // nvmlDeviceGetUtilizationRates
using DeviceGetMemoryInfoFn = Return (*)(Device, Memory*);                         // nvmlDeviceGetMemoryInfo
using DeviceGetPowerUsageFn = Return (*)(Device, unsigned int*);                   // nvmlDeviceGetPowerUsage (mW)
using DeviceGetProcessesV1Fn = Return (*)(Device, unsigned int*, ProcessInfoV1*);  // ..ComputeRunningProcesses
using DeviceGetProcessesV2Fn = Return (*)(Device, unsigned int*, ProcessInfoV2*);  // .._v2 and _v3
using DeviceGetProcessUtilizationFn = Return (*)(Device, ProcessUtilizationSample*, unsigned int*,
                                                 unsigned long long);                 // nvmlDeviceGetProcessUtilization
using DeviceGetMigModeFn = Return (*)(Device, unsigned int*, unsigned int*);          // nvmlDeviceGetMigMode
using DeviceGetMaxMigDeviceCountFn = Return (*)(Device, unsigned int*);               // nvmlDeviceGetMaxMigDeviceCount
using DeviceGetMigDeviceHandleByIndexFn = Return (*)(Device, unsigned int, Device*);  // ..MigDeviceHandleByIndex
}

}  // namespace bc::nvml
