# The GPU sampler against a fake NVML with NVML's C ABI (this machine has no GPU; see tests/README.md).
# Two builds of the fake: with the _v3 process list, and with only the unversioned one of older drivers.
add_library(bc_fake_nvml SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_nvml.cpp)
add_library(bc_fake_nvml_v1 SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_nvml.cpp)
target_compile_definitions(bc_fake_nvml_v1 PRIVATE BC_FAKE_NVML_V1)
foreach(fake bc_fake_nvml bc_fake_nvml_v1)
  set_target_properties(${fake} PROPERTIES CXX_VISIBILITY_PRESET hidden LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/gpu)
endforeach()

add_executable(test_gpu_sampler ${CMAKE_CURRENT_LIST_DIR}/test_gpu_sampler.cpp ${CMAKE_CURRENT_LIST_DIR}/test_job_gpus.cpp)
target_link_libraries(test_gpu_sampler PRIVATE bc_sampler GTest::gtest_main)
target_compile_definitions(test_gpu_sampler PRIVATE FAKE_NVML="$<TARGET_FILE:bc_fake_nvml>"
                           FAKE_NVML_V1="$<TARGET_FILE:bc_fake_nvml_v1>")
add_dependencies(test_gpu_sampler bc_fake_nvml bc_fake_nvml_v1)
gtest_discover_tests(test_gpu_sampler PROPERTIES LABELS unit)
