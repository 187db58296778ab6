# sl_options: an interface target every sl_* library links PUBLIC, carrying the
# include root (#include "pipeline/audio.h"), POSIX feature macro, warnings and
# sanitizer flags, so they are set in one place.

add_library(sl_options INTERFACE)
target_include_directories(sl_options INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
target_compile_definitions(sl_options INTERFACE _POSIX_C_SOURCE=200809L
  SL_VERSION="${PROJECT_VERSION}")
target_compile_options(sl_options INTERFACE -Wall -Wextra -Wshadow -Wstrict-prototypes
  -Wmissing-prototypes -Wdouble-promotion -Wno-unused-parameter)
if(SL_WERROR)
  target_compile_options(sl_options INTERFACE -Werror)
endif()
if(SL_FUZZ)  # libFuzzer (tests/fuzz): coverage everywhere, the fuzzer's main only in fuzz_*
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SL_FUZZ needs clang: CC=clang cmake -DSL_FUZZ=ON ... (apt-get install clang libclang-rt-14-dev)")
  endif()
  if(NOT SL_SANITIZE)
    set(SL_SANITIZE address,undefined)
  endif()
  target_compile_options(sl_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
if(SL_SANITIZE)
  target_compile_options(sl_options INTERFACE -fsanitize=${SL_SANITIZE} -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  target_link_options(sl_options INTERFACE -fsanitize=${SL_SANITIZE})
endif()
