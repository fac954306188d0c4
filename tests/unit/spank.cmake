add_executable(test_spank_config ${CMAKE_CURRENT_LIST_DIR}/test_spank_config.cpp)
target_link_libraries(test_spank_config PRIVATE bc_spank_config GTest::gtest_main)
gtest_discover_tests(test_spank_config PROPERTIES LABELS unit)

# The plugin must export the SPANK entry points and nothing else (version script).
if(NOT BC_SANITIZE)
add_test(NAME spank_exports_only_entry_points
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/check_exports.sh $<TARGET_FILE:bubble_chamber>)
set_tests_properties(spank_exports_only_entry_points PROPERTIES LABELS "unit;plugin")
endif()
