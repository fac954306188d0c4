# Shipping node data to the central daemon: wire format, outbox, dedup, API keys (unit), and real bcd
# ingest with munged and Slurm (integration).
add_executable(test_wire ${CMAKE_CURRENT_LIST_DIR}/test_wire.cpp)
target_link_libraries(test_wire PRIVATE bc_store GTest::gtest_main)
target_include_directories(test_wire PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
gtest_discover_tests(test_wire PROPERTIES LABELS unit)

add_executable(bc-central-tool ${CMAKE_CURRENT_LIST_DIR}/central_tool.cpp)
target_link_libraries(bc-central-tool PRIVATE bc_store bc_auth)
set_target_properties(bc-central-tool PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/central)

# bcd ingest against a private munged: two simulated nodes, dedup, replay, forged and non-root credentials,
# API keys, tokens, bad bodies.
add_test(NAME it_central_ingest COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_central_ingest.py)
set_tests_properties(it_central_ingest PROPERTIES LABELS "integration;central" TIMEOUT 180 SKIP_RETURN_CODE 77
                     FIXTURES_REQUIRED tls_material
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")

# An acknowledged batch survives: strace shows data and meta synced before every 200, and 9,000 batches
# pushed while bcd is killed in a loop all arrive, once.
add_test(NAME it_central_durability COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_central_durability.py)
set_tests_properties(it_central_durability PROPERTIES LABELS "integration;central" TIMEOUT 400
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# Central tests on the integration cluster (a real Slurm): not in the sanitizer build.
function(central_slurm_test name script)
  if(NOT BC_SANITIZE)
    add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script})
    set_tests_properties(${name} PROPERTIES
      FIXTURES_REQUIRED "slurm_cluster;tls_material" RESOURCE_LOCK slurm_cluster LABELS "integration;central" TIMEOUT 300
      SKIP_RETURN_CODE 77
      ENVIRONMENT "BC_IT_WORK=${BC_IT_WORK};BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")
  endif()
endfunction()

# bcd down for a whole real Slurm job, then up: no loss, no duplicates.
central_slurm_test(it_central_slurm test_central_slurm.py)

add_executable(test_central_config ${CMAKE_CURRENT_LIST_DIR}/test_central_config.cpp)
target_link_libraries(test_central_config PRIVATE bc_spank_config GTest::gtest_main)
gtest_discover_tests(test_central_config PROPERTIES LABELS unit)

# A real job array: ArrayJobID/ArrayTaskID recorded, bcacct -j A / A_T and JobID as sacct prints them, from the
# node store and through bcd.
central_slurm_test(it_central_array test_central_array.py)

# bcd over TLS: certificates or keys that do not load, the warning for plain HTTP beyond loopback, and clients
# refusing a bcd their CA file does not verify.
add_test(NAME it_bcd_tls COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_bcd_tls.py)
set_tests_properties(it_bcd_tls PROPERTIES LABELS "integration;central" TIMEOUT 120 SKIP_RETURN_CODE 77
                     FIXTURES_REQUIRED tls_material
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${PROJECT_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")
