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
if(SL_SANITIZE)
  target_compile_options(sl_options INTERFACE -fsanitize=${SL_SANITIZE} -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  target_link_options(sl_options INTERFACE -fsanitize=${SL_SANITIZE})
endif()
