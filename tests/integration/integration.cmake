add_executable(bc-testload ${CMAKE_CURRENT_LIST_DIR}/testload.cpp)
set_target_properties(bc-testload PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/integration)

# The integration tests need the plugin, which a sanitizer build does not load into slurmstepd.
if(NOT BC_SANITIZE)
  set(BC_IT_WORK ${CMAKE_BINARY_DIR}/itest)
  add_test(NAME slurm_cluster_setup
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/cluster_fixture.sh setup ${BC_IT_WORK} ${CMAKE_BINARY_DIR})
  add_test(NAME slurm_cluster_cleanup
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/cluster_fixture.sh cleanup ${BC_IT_WORK} ${CMAKE_BINARY_DIR})
  set_tests_properties(slurm_cluster_setup PROPERTIES FIXTURES_SETUP slurm_cluster LABELS integration TIMEOUT 120)
  set_tests_properties(slurm_cluster_cleanup PROPERTIES FIXTURES_CLEANUP slurm_cluster LABELS integration)
  foreach(name process_tree srun_steps salloc_steps never_fails_job user_option cpu_counted_once vs_sacct
               ranks_threads notes gpus)
    add_test(NAME it_${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_${name}.py)
    set_tests_properties(it_${name} PROPERTIES
      FIXTURES_REQUIRED slurm_cluster RESOURCE_LOCK slurm_cluster LABELS integration TIMEOUT 300
      SKIP_RETURN_CODE 77
      ENVIRONMENT "BC_IT_WORK=${BC_IT_WORK};BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_LIST_DIR};PYTHONDONTWRITEBYTECODE=1")
  endforeach()
  # it_gpus also reads the job through bcd and the page (tests/web's helpers, Chromium from web/node_modules).
  set_property(TEST it_gpus APPEND PROPERTY ENVIRONMENT
               "PYTHONPATH=${CMAKE_CURRENT_LIST_DIR}:${CMAKE_SOURCE_DIR}/tests/web;BC_WEB_NODE_MODULES=${PROJECT_SOURCE_DIR}/web/node_modules")
  # eBPF events end to end (issue 4): they need BPF as well, and skip loudly where it cannot load (not in CI).
  foreach(name events_tree events_first_moments events_files_net events_io events_concurrent events_loss events_degrade
               events_load_failure)
    add_test(NAME it_${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_${name}.py)
    set_tests_properties(it_${name} PROPERTIES
      FIXTURES_REQUIRED slurm_cluster RESOURCE_LOCK slurm_cluster LABELS "integration;bpf" TIMEOUT 300
      SKIP_RETURN_CODE 77
      ENVIRONMENT "BC_IT_WORK=${BC_IT_WORK};BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_LIST_DIR};PYTHONDONTWRITEBYTECODE=1")
  endforeach()
  # Two slurmd nodes on this host, each in namespaces of its own (issue 18): real multi-node jobs.
  set(BC_IT2_WORK ${CMAKE_BINARY_DIR}/itest-two-nodes)
  add_test(NAME slurm_two_nodes_setup
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/two_node_fixture.sh setup ${BC_IT2_WORK} ${CMAKE_BINARY_DIR})
  add_test(NAME slurm_two_nodes_cleanup
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/two_node_fixture.sh cleanup ${BC_IT2_WORK} ${CMAKE_BINARY_DIR})
  set_tests_properties(slurm_two_nodes_setup PROPERTIES FIXTURES_SETUP slurm_two_nodes LABELS integration TIMEOUT 120
                       RESOURCE_LOCK slurm_cluster)
  set_tests_properties(slurm_two_nodes_cleanup PROPERTIES FIXTURES_CLEANUP slurm_two_nodes LABELS integration
                       RESOURCE_LOCK slurm_cluster)
  add_test(NAME it_two_nodes COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_two_nodes.py)
  set(BC_IT2_ENV "BC_IT2_WORK=${BC_IT2_WORK};BC_BUILD=${CMAKE_BINARY_DIR};BC_WEB_NODE_MODULES=${PROJECT_SOURCE_DIR}/web/node_modules;PYTHONDONTWRITEBYTECODE=1")
  set_tests_properties(it_two_nodes PROPERTIES
    FIXTURES_REQUIRED slurm_two_nodes RESOURCE_LOCK slurm_cluster LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT "${BC_IT2_ENV}")
  # After it_two_nodes: it loses one of the two nodes, and starts it again.
  add_test(NAME it_node_lost COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_node_lost.py)
  set_tests_properties(it_node_lost PROPERTIES
    FIXTURES_REQUIRED slurm_two_nodes RESOURCE_LOCK slurm_cluster LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
    DEPENDS it_two_nodes ENVIRONMENT "${BC_IT2_ENV}")
endif()

add_executable(bc-make-store ${CMAKE_CURRENT_LIST_DIR}/make_store.cpp)
target_link_libraries(bc-make-store PRIVATE bc_store)
set_target_properties(bc-make-store PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/integration)
add_test(NAME it_bcd_read COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_bcd_read.py)
set_tests_properties(it_bcd_read PROPERTIES LABELS integration TIMEOUT 120 SKIP_RETURN_CODE 77
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_LIST_DIR};PYTHONDONTWRITEBYTECODE=1")
add_test(NAME it_bcacct_bcd COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_bcacct_bcd.py)
set_tests_properties(it_bcacct_bcd PROPERTIES LABELS integration TIMEOUT 120 SKIP_RETURN_CODE 77 FIXTURES_REQUIRED tls_material
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_LIST_DIR};PYTHONDONTWRITEBYTECODE=1")
