add_executable(test_auth ${CMAKE_CURRENT_LIST_DIR}/test_auth.cpp)
target_link_libraries(test_auth PRIVATE bc_auth GTest::gtest_main)
gtest_discover_tests(test_auth PROPERTIES LABELS unit)
