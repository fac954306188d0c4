add_executable(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.cpp)
target_link_libraries(test_store PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
gtest_discover_tests(test_store PROPERTIES LABELS unit)
include(${CMAKE_CURRENT_LIST_DIR}/store_extra.cmake)
