# Process-level store tests: kill -9 loop, full disk, concurrent writers. Label "unit": they need no Slurm
# and run in every build, sanitizers included. The full-disk test needs root (it mounts a tmpfs) and
# exits 77 (skipped) without it.
add_executable(store_writer ${CMAKE_CURRENT_LIST_DIR}/store_writer.cpp)
target_link_libraries(store_writer PRIVATE bc_store)

foreach(name crash concurrency)
  add_executable(test_store_${name} ${CMAKE_CURRENT_LIST_DIR}/test_store_${name}.cpp)
  target_link_libraries(test_store_${name} PRIVATE bc_store GTest::gtest_main)
  target_compile_definitions(test_store_${name} PRIVATE STORE_WRITER="$<TARGET_FILE:store_writer>")
  add_dependencies(test_store_${name} store_writer)
  add_test(NAME store.${name} COMMAND test_store_${name})
    # Many busy processes: run alone, so timing-sensitive tests elsewhere are not starved of CPU.
  set_tests_properties(store.${name} PROPERTIES LABELS unit TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()

add_executable(test_store_full_disk ${CMAKE_CURRENT_LIST_DIR}/test_store_full_disk.cpp)
target_link_libraries(test_store_full_disk PRIVATE bc_store GTest::gtest)
add_test(NAME store.full_disk COMMAND test_store_full_disk)
# It writes until the store drops seconds: 2,400 ticks or up to 10,100, as the records' sizes place the
# disk reserve (99 processes: 2,400; 102: 10,028). Under ASan 10,000 ticks take 290 s on a 2-core VM.
set_tests_properties(store.full_disk PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 900 RUN_SERIAL TRUE)
