# accounting_db: the eBPF event records (files, connections, exit status, lost events), schema 2 -> 3.
add_executable(test_store_events ${CMAKE_CURRENT_LIST_DIR}/test_store_events.cpp)
target_link_libraries(test_store_events PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
target_include_directories(test_store_events PRIVATE ${PROJECT_SOURCE_DIR}/accounting_db)
gtest_discover_tests(test_store_events PROPERTIES LABELS unit)
