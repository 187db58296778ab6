# sl_add_test(NAME name SOURCES a.c ... LIBS sl_x ... LABELS unit ... [ARGS ...] [TIMEOUT s])
# builds a CUnit test program and registers it with ctest. Tests run with the
# build directory as working directory and SL_TEST_DATA pointing at tests/data.
function(sl_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE sl_testutil ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SL_TEST_DATA=${PROJECT_SOURCE_DIR}/tests/data;SL_BIN=$<TARGET_FILE:spearlabel>;LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
endfunction()

# sl_add_script_test(NAME name COMMAND ... LABELS ...) registers a shell/python test.
function(sl_add_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SL_TEST_DATA=${PROJECT_SOURCE_DIR}/tests/data;SL_BIN=$<TARGET_FILE:spearlabel>;SL_SOURCE_DIR=${PROJECT_SOURCE_DIR};LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
endfunction()
