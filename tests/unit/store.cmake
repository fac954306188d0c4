add_executable(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.cpp)
target_link_libraries(test_store PRIVATE bc_store PkgConfig::LMDB GTest::gtest_main)
target_include_directories(test_store PRIVATE ${PROJECT_SOURCE_DIR}/accounting_db)
gtest_discover_tests(test_store PROPERTIES LABELS unit)
