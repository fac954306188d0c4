# accounting_db: the eBPF event records (files, connections, exit status, lost events), schema 2 -> 3.
add_executable(test_store_events ${CMAKE_CURRENT_LIST_DIR}/test_store_events.cpp)
target_link_libraries(test_store_events PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
gtest_discover_tests(test_store_events PROPERTIES LABELS unit)
