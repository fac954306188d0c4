add_executable(test_monitor_unit ${CMAKE_CURRENT_LIST_DIR}/test_proc_parse.cpp
               ${CMAKE_CURRENT_LIST_DIR}/test_cgroup_reader.cpp ${CMAKE_CURRENT_LIST_DIR}/test_process_table.cpp
               ${CMAKE_CURRENT_LIST_DIR}/test_process_table_events.cpp ${CMAKE_CURRENT_LIST_DIR}/test_reap_accounting.cpp)
target_link_libraries(test_monitor_unit PRIVATE bc_sampler GTest::gtest_main)
target_compile_definitions(test_monitor_unit PRIVATE BC_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../fixtures")
gtest_discover_tests(test_monitor_unit PROPERTIES LABELS unit)

add_executable(test_handoff ${CMAKE_CURRENT_LIST_DIR}/test_handoff.cpp ${CMAKE_CURRENT_LIST_DIR}/test_task_finals.cpp)
target_link_libraries(test_handoff PRIVATE bc_handoff GTest::gtest_main)
gtest_discover_tests(test_handoff PROPERTIES LABELS unit)

# The launch contract's command line, built by the launchers and parsed by bc-monitor.
add_executable(test_monitor_args ${CMAKE_CURRENT_LIST_DIR}/test_monitor_args.cpp)
target_link_libraries(test_monitor_args PRIVATE bc_sampler bc_launch GTest::gtest_main)
target_compile_definitions(test_monitor_args PRIVATE BC_TLS_DIR="${BC_TLS_DIR}")
gtest_discover_tests(test_monitor_args PROPERTIES LABELS unit FIXTURES_REQUIRED tls_material)
