add_executable(test_monitor_unit ${CMAKE_CURRENT_LIST_DIR}/test_proc_parse.cpp
               ${CMAKE_CURRENT_LIST_DIR}/test_cgroup_reader.cpp ${CMAKE_CURRENT_LIST_DIR}/test_process_table.cpp
               ${CMAKE_CURRENT_LIST_DIR}/test_process_table_events.cpp)
target_link_libraries(test_monitor_unit PRIVATE bc_sampler GTest::gtest_main)
target_compile_definitions(test_monitor_unit PRIVATE BC_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../fixtures")
gtest_discover_tests(test_monitor_unit PROPERTIES LABELS unit)

add_executable(test_handoff ${CMAKE_CURRENT_LIST_DIR}/test_handoff.cpp)
target_link_libraries(test_handoff PRIVATE bc_handoff GTest::gtest_main)
gtest_discover_tests(test_handoff PROPERTIES LABELS unit)
