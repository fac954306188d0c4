# accounting_db: rollups, retention, administration, and the process-level store tests in tests/store/.
add_executable(test_store_rollup ${CMAKE_CURRENT_LIST_DIR}/test_store_rollup.cpp)
target_link_libraries(test_store_rollup PRIVATE bc_store GTest::gtest_main)
# CPU-bound for seconds under the sanitizers: take both cores of a 2-core CI runner, so timing-sensitive
# tests elsewhere never share a core with them.
gtest_discover_tests(test_store_rollup PROPERTIES LABELS unit PROCESSORS 2)

add_executable(test_store_retention ${CMAKE_CURRENT_LIST_DIR}/test_store_retention.cpp)
target_link_libraries(test_store_retention PRIVATE bc_store GTest::gtest_main)
# The tests set BC_RETENTION_* in their own process; run them one per process (the default).
gtest_discover_tests(test_store_retention PROPERTIES LABELS unit PROCESSORS 2)

add_executable(test_store_admin ${CMAKE_CURRENT_LIST_DIR}/test_store_admin.cpp)
target_link_libraries(test_store_admin PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
target_compile_definitions(test_store_admin PRIVATE BCADM_BINARY="$<TARGET_FILE:bcadm>")
add_dependencies(test_store_admin bcadm)
gtest_discover_tests(test_store_admin PROPERTIES LABELS unit)

add_executable(test_store_records ${CMAKE_CURRENT_LIST_DIR}/test_store_records.cpp)
target_link_libraries(test_store_records PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
gtest_discover_tests(test_store_records PROPERTIES LABELS unit)
include(${PROJECT_SOURCE_DIR}/tests/store/store_tests.cmake)

add_executable(test_store_open_record ${CMAKE_CURRENT_LIST_DIR}/test_store_open_record.cpp)
target_link_libraries(test_store_open_record PRIVATE bc_store GTest::gtest_main)
gtest_discover_tests(test_store_open_record PROPERTIES LABELS unit)

add_executable(test_store_thread_counts ${CMAKE_CURRENT_LIST_DIR}/test_store_thread_counts.cpp)
target_link_libraries(test_store_thread_counts PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
gtest_discover_tests(test_store_thread_counts PROPERTIES LABELS unit)

add_executable(test_store_process_pack ${CMAKE_CURRENT_LIST_DIR}/test_store_process_pack.cpp)
target_link_libraries(test_store_process_pack PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
gtest_discover_tests(test_store_process_pack PROPERTIES LABELS unit)

add_executable(test_store_access ${CMAKE_CURRENT_LIST_DIR}/test_store_access.cpp)
target_link_libraries(test_store_access PRIVATE bc_store GTest::gtest_main)
target_compile_definitions(test_store_access PRIVATE BCACCT_BINARY="$<TARGET_FILE:bcacct>")
add_dependencies(test_store_access bcacct)
gtest_discover_tests(test_store_access PROPERTIES LABELS unit)
