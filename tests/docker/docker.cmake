# bc-docker (issue 7).
#   unit:   pure parts (API JSON, cgroup location, key mapping, config, container log, discovery with fakes);
#           need no Docker.
#   docker: against a real dockerd. A fixture installs docker.io and busybox-static if missing, starts dockerd
#           if it is not running and imports the bc-busybox:test image. Root only (skipped with status 77
#           otherwise, failed when CI=true). Serialised on one dockerd with RESOURCE_LOCK.
add_executable(test_docker_unit ${CMAKE_CURRENT_LIST_DIR}/test_docker_unit.cpp)
target_link_libraries(test_docker_unit PRIVATE bc_docker GTest::gtest_main)
gtest_discover_tests(test_docker_unit PROPERTIES LABELS unit)

# Prints a container's records from a store as bcacct --json does, for any 64-bit key (bcacct's -j takes
# Slurm job ids only, for now).
add_executable(bc-docker-storedump ${CMAKE_CURRENT_LIST_DIR}/storedump.cpp)
target_link_libraries(bc-docker-storedump PRIVATE bc_job_source bc_report bc_store bc_docker_core)
set_target_properties(bc-docker-storedump PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/docker)

set(BC_DOCKER_WORK ${CMAKE_BINARY_DIR}/docker-test)
set(BC_DOCKER_TEST_ENV
    "BC_DOCKER_WORK=${BC_DOCKER_WORK};BC_BUILD=${CMAKE_BINARY_DIR};BC_WEB_NODE_MODULES=${PROJECT_SOURCE_DIR}/web/node_modules;PYTHONDONTWRITEBYTECODE=1")
add_test(NAME docker_setup COMMAND ${CMAKE_CURRENT_LIST_DIR}/docker_fixture.sh setup ${BC_DOCKER_WORK})
add_test(NAME docker_cleanup COMMAND ${CMAKE_CURRENT_LIST_DIR}/docker_fixture.sh cleanup ${BC_DOCKER_WORK})
set_tests_properties(docker_setup PROPERTIES FIXTURES_SETUP dockerd LABELS docker TIMEOUT 600
                     SKIP_RETURN_CODE 77 RESOURCE_LOCK dockerd)
set_tests_properties(docker_cleanup PROPERTIES FIXTURES_CLEANUP dockerd LABELS docker TIMEOUT 120
                     RESOURCE_LOCK dockerd)
foreach(name picks_up_running start_latency workload_accuracy files_and_connection push_with_api_key dockerd_restart two_containers_apart
             short_container_logged socket_missing socket_permission_denied)
  add_test(NAME docker_${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/docker_tests.py ${name})
  set_tests_properties(docker_${name} PROPERTIES FIXTURES_REQUIRED "dockerd;tls_material" RESOURCE_LOCK dockerd LABELS docker
                       TIMEOUT 120 SKIP_RETURN_CODE 77 ENVIRONMENT "${BC_DOCKER_TEST_ENV}")
endforeach()
