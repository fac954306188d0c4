# The web view: bcd's per-job API and the page in real headless Chromium (playwright-core from web/).
add_executable(bc-web-store ${CMAKE_CURRENT_LIST_DIR}/web_store.cpp)
target_link_libraries(bc-web-store PRIVATE bc_store)
set_target_properties(bc-web-store PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/web)

add_test(NAME it_bcd_views COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_bcd_views.py)
set_tests_properties(it_bcd_views PROPERTIES LABELS "integration;web" TIMEOUT 180 SKIP_RETURN_CODE 77
                     ENVIRONMENT "BC_BUILD=${CMAKE_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_LIST_DIR}:${CMAKE_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")

# Browser tests: headless Chromium driven by playwright-core from web/node_modules.
set(BC_WEB_TEST_ENV "BC_BUILD=${CMAKE_BINARY_DIR};BC_WEB_NODE_MODULES=${PROJECT_SOURCE_DIR}/web/node_modules;PYTHONPATH=${CMAKE_CURRENT_LIST_DIR}:${CMAKE_SOURCE_DIR}/tests/integration;PYTHONDONTWRITEBYTECODE=1")
add_test(NAME web_page COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_web_page.py)
set_tests_properties(web_page PROPERTIES LABELS "integration;web" TIMEOUT 300 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${BC_WEB_TEST_ENV}")
# Real sbatch jobs through the Slurm cluster fixture of tests/integration.
if(NOT BC_SANITIZE)
  add_test(NAME web_slurm COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_web_slurm.py)
  set_tests_properties(web_slurm PROPERTIES FIXTURES_REQUIRED slurm_cluster RESOURCE_LOCK slurm_cluster
                       LABELS "integration;web" TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "${BC_WEB_TEST_ENV};BC_IT_WORK=${BC_IT_WORK}")
endif()
