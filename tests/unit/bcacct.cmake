# tests for bcacct: the report library, the store-backed job source, and the real binary.
add_executable(test_bcacct ${CMAKE_CURRENT_LIST_DIR}/test_bcacct.cpp)
target_link_libraries(test_bcacct PRIVATE bc_job_source bc_report bc_store PkgConfig::CJSON GTest::gtest_main)
# The CLI tests fork+exec the binary that gets installed.
target_compile_definitions(test_bcacct PRIVATE BCACCT_BINARY="$<TARGET_FILE:bcacct>")
add_dependencies(test_bcacct bcacct)
gtest_discover_tests(test_bcacct TEST_PREFIX "bcacct." PROPERTIES LABELS unit)

add_executable(test_tree ${CMAKE_CURRENT_LIST_DIR}/test_tree.cpp)
target_link_libraries(test_tree PRIVATE bc_report GTest::gtest_main)
gtest_discover_tests(test_tree PROPERTIES LABELS unit TEST_PREFIX bcacct.)

add_executable(test_bcacct_cli ${CMAKE_CURRENT_LIST_DIR}/test_bcacct_cli.cpp)
target_link_libraries(test_bcacct_cli PRIVATE bc_bcacct_cli bc_job_source bc_report bc_store GTest::gtest_main)
gtest_discover_tests(test_bcacct_cli TEST_PREFIX "bcacct." PROPERTIES LABELS unit)
