pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
add_executable(test_http ${CMAKE_CURRENT_LIST_DIR}/test_http.cpp)
target_link_libraries(test_http PRIVATE bc_http PkgConfig::LIBCURL GTest::gtest_main)
gtest_discover_tests(test_http PROPERTIES LABELS unit)

add_executable(test_bcd_config ${CMAKE_CURRENT_LIST_DIR}/test_bcd_config.cpp)
target_link_libraries(test_bcd_config PRIVATE bc_bcd_config GTest::gtest_main)
gtest_discover_tests(test_bcd_config PROPERTIES LABELS unit)

add_executable(test_bcd_cache ${CMAKE_CURRENT_LIST_DIR}/test_bcd_cache.cpp)
target_link_libraries(test_bcd_cache PRIVATE bc_bcd_cache GTest::gtest_main)
gtest_discover_tests(test_bcd_cache PROPERTIES LABELS unit)

add_executable(test_http_limits ${CMAKE_CURRENT_LIST_DIR}/test_http_limits.cpp)
target_link_libraries(test_http_limits PRIVATE bc_http GTest::gtest_main)
# Opens 1,100 connections and waits out deadlines: one at a time, not beside timing-sensitive tests.
gtest_discover_tests(test_http_limits PROPERTIES LABELS unit RUN_SERIAL TRUE)

# HTTPS: the HTTP layer and bcd's TLS file checks against the fixture's certificates.
add_executable(test_tls ${CMAKE_CURRENT_LIST_DIR}/test_tls.cpp)
target_link_libraries(test_tls PRIVATE bc_http bc_auth PkgConfig::LIBCURL GTest::gtest_main)
target_compile_definitions(test_tls PRIVATE BC_TLS_DIR="${BC_TLS_DIR}")
gtest_discover_tests(test_tls PROPERTIES LABELS unit FIXTURES_REQUIRED tls_material)

add_executable(test_bcd_job_index ${CMAKE_CURRENT_LIST_DIR}/test_bcd_job_index.cpp)
target_link_libraries(test_bcd_job_index PRIVATE bc_bcd_index GTest::gtest_main)
gtest_discover_tests(test_bcd_job_index PROPERTIES LABELS unit)

add_executable(test_json ${CMAKE_CURRENT_LIST_DIR}/test_json.cpp)
target_link_libraries(test_json PRIVATE bc_http bc_json GTest::gtest_main)
gtest_discover_tests(test_json PROPERTIES LABELS unit)
