# EventCollector (cgroup_monitor/bpf) against the real kernel. Label "bpf", not "unit": the tests need root and
# BPF. They skip with the reason when BPF cannot load, and fail instead when CI=true. They run serially: each
# test process loads its own copy of the programs, and some tests time short-lived processes.
if(TARGET bc_events_refused_objects)  # a build with BPF support (see cgroup_monitor/bpf/CMakeLists.txt)
  add_executable(test_events ${CMAKE_CURRENT_LIST_DIR}/test_events.cpp)
  target_link_libraries(test_events PRIVATE bc_events GTest::gtest)
  gtest_discover_tests(test_events PROPERTIES LABELS bpf RUN_SERIAL TRUE TIMEOUT 60)

  # Loading: the verifier's cost of every program, and the failure path with an object the verifier refuses.
  add_executable(test_events_load ${CMAKE_CURRENT_LIST_DIR}/test_events_load.cpp)
  target_link_libraries(test_events_load PRIVATE bc_sampler GTest::gtest_main)
  add_dependencies(test_events_load bc_events_refused_objects)
  target_compile_definitions(test_events_load PRIVATE
                             BC_REFUSED_OBJECT="${CMAKE_BINARY_DIR}/cgroup_monitor/bpf/bc_events_refused.bpf.o")
  gtest_discover_tests(test_events_load PROPERTIES LABELS bpf RUN_SERIAL TRUE TIMEOUT 60)
else()
  # Built without BPF support: the event tests cannot even be built. Say so in the results, loudly, and fail
  # under CI=true as a skipped BPF test does.
  add_test(NAME bpf_tests_not_built
           COMMAND sh -c "echo '*** SKIPPED: this build has no BPF support (no clang, bpftool or kernel BTF at build time): the eBPF event tests were not built ***'; [ \"$CI\" = true ] && exit 1; exit 77")
  set_tests_properties(bpf_tests_not_built PROPERTIES LABELS bpf SKIP_RETURN_CODE 77)
endif()

# The memory of failed loads, its file and key (no BPF).
add_executable(test_load_failure ${CMAKE_CURRENT_LIST_DIR}/test_load_failure.cpp)
target_link_libraries(test_load_failure PRIVATE bc_events_memory GTest::gtest_main)
gtest_discover_tests(test_load_failure PROPERTIES LABELS unit)

# The merging of the aggregate maps' rows and the names by hash (no BPF).
add_executable(test_event_aggregates ${CMAKE_CURRENT_LIST_DIR}/test_event_aggregates.cpp)
target_link_libraries(test_event_aggregates PRIVATE bc_events GTest::gtest_main)
gtest_discover_tests(test_event_aggregates PROPERTIES LABELS unit)
