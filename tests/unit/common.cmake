add_executable(test_key_value ${CMAKE_CURRENT_LIST_DIR}/test_key_value.cpp)
target_link_libraries(test_key_value PRIVATE bc_common GTest::gtest_main)
gtest_discover_tests(test_key_value PROPERTIES LABELS unit)

add_executable(test_hash ${CMAKE_CURRENT_LIST_DIR}/test_hash.cpp)
target_link_libraries(test_hash PRIVATE bc_store GTest::gtest_main)
gtest_discover_tests(test_hash PROPERTIES LABELS unit)

add_executable(test_hostlist ${CMAKE_CURRENT_LIST_DIR}/test_hostlist.cpp)
target_link_libraries(test_hostlist PRIVATE bc_common GTest::gtest_main)
gtest_discover_tests(test_hostlist PROPERTIES LABELS unit)
