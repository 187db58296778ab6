# Finds every dependency. A missing one stops configure with the Debian
# package that provides it, so a fresh machine knows what to apt-get install.

find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

function(sl_require_pkg var module debian_pkg)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found (pkg-config ${module}): apt-get install ${debian_pkg}")
  endif()
  message(STATUS "${module} ${${var}_VERSION}")
endfunction()

sl_require_pkg(LMDB     lmdb      liblmdb-dev)
sl_require_pkg(SNDFILE  sndfile   libsndfile1-dev)
sl_require_pkg(SOXR     soxr      libsoxr-dev)
sl_require_pkg(OPENBLAS openblas  libopenblas-dev)
sl_require_pkg(JANSSON  jansson   libjansson-dev)
sl_require_pkg(CRYPTO   libcrypto libssl-dev)
sl_require_pkg(FFTW3F   fftw3f    libfftw3-dev)   # MFCC's real FFT (single precision)

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)  # pipeline/par.c's workers

find_package(MPI QUIET COMPONENTS C)
if(NOT MPI_C_FOUND)
  message(FATAL_ERROR "MPI (C) not found: apt-get install libopenmpi-dev openmpi-bin")
endif()
message(STATUS "MPI ${MPI_C_VERSION}: ${MPIEXEC_EXECUTABLE}")

if(SL_BUILD_TESTS)
  sl_require_pkg(CUNIT cunit libcunit1-dev)
endif()
