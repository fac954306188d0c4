# EventCollector (cgroup_monitor/bpf) against the real kernel. Label "bpf", not "unit": the tests need root and
# BPF. They skip with the reason when BPF cannot load, and fail instead when CI=true. They run serially: each
# test process loads its own copy of the programs, and some tests time short-lived processes.
add_executable(test_events ${CMAKE_CURRENT_LIST_DIR}/test_events.cpp)
target_link_libraries(test_events PRIVATE bc_events GTest::gtest)
gtest_discover_tests(test_events PROPERTIES LABELS bpf RUN_SERIAL TRUE TIMEOUT 60)
