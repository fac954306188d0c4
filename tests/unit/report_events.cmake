# bcacct's output of the eBPF events (files, connections, exit codes, lost events).
add_executable(test_report_events ${CMAKE_CURRENT_LIST_DIR}/test_report_events.cpp)
target_link_libraries(test_report_events PRIVATE bc_report PkgConfig::CJSON GTest::gtest_main)
gtest_discover_tests(test_report_events PROPERTIES LABELS unit TEST_PREFIX bcacct.)

# The efficiency notes (bcacct --notes, --seff, the web view's notes).
add_executable(test_job_notes ${CMAKE_CURRENT_LIST_DIR}/test_job_notes.cpp)
target_link_libraries(test_job_notes PRIVATE bc_job_model GTest::gtest_main)
gtest_discover_tests(test_job_notes PROPERTIES LABELS unit)
