# Finds the inference runtime of VOXTRAL_BACKEND and defines the interface target
# voxtral_backend, which libvoxtral links.
#
# xnnpack: the prebuilt ExecuTorch runtime shipped in the executorch==1.5.1 wheel
# (never built from source). Its CMake package lives in site-packages; we ask the
# Python interpreter of the current environment (the build environment under pip)
# where the package is, unless EXECUTORCH_ROOT names it.

if(VOXTRAL_BACKEND STREQUAL "xnnpack")
  if(NOT EXECUTORCH_ROOT)
    execute_process(
      COMMAND "${Python3_EXECUTABLE}" -c
              "import executorch, sys; sys.stdout.write(list(executorch.__path__)[0])"
      OUTPUT_VARIABLE _executorch_root RESULT_VARIABLE _rc ERROR_QUIET)
    if(NOT _rc EQUAL 0 OR NOT _executorch_root)
      message(FATAL_ERROR
        "VOXTRAL_BACKEND=xnnpack needs the ExecuTorch runtime from the executorch==1.5.1 wheel, "
        "but `${Python3_EXECUTABLE}` cannot import executorch. Install it "
        "(pip install executorch==1.5.1) or pass -DEXECUTORCH_ROOT=<site-packages>/executorch.")
    endif()
    set(EXECUTORCH_ROOT "${_executorch_root}")
  endif()
  # Not a cache lookup: under pip's build isolation the wheel lives in a new
  # temporary environment on every build.
  unset(executorch_DIR CACHE)
  find_package(executorch REQUIRED CONFIG PATHS "${EXECUTORCH_ROOT}/lib/cmake/executorch" NO_DEFAULT_PATH)
  foreach(_t runtime kernels_optimized kernels_quantized backend_xnnpack threadpool)
    if(NOT TARGET executorch::${_t})
      message(FATAL_ERROR "The ExecuTorch package at ${EXECUTORCH_ROOT} has no target executorch::${_t}")
    endif()
  endforeach()
  message(STATUS "voxtral: ExecuTorch ${EXECUTORCH_BUILD_VERSION} from ${EXECUTORCH_ROOT}")
  add_library(voxtral_backend INTERFACE)
  # kernels_quantized is opt-in in the wheel's package (see docs/architecture.md): our
  # programs use torchao quantized linears, so we link it explicitly.
  target_link_libraries(voxtral_backend INTERFACE
    executorch::runtime executorch::kernels_optimized executorch::kernels_quantized
    executorch::backend_xnnpack executorch::threadpool)
  target_compile_definitions(voxtral_backend INTERFACE VOXTRAL_BACKEND_EXECUTORCH=1)
elseif(VOXTRAL_BACKEND STREQUAL "cuda" OR VOXTRAL_BACKEND STREQUAL "metal")
  message(FATAL_ERROR
    "VOXTRAL_BACKEND=${VOXTRAL_BACKEND} is declared but not implemented yet; "
    "only xnnpack builds today (see README, 'Backends').")
else()
  message(FATAL_ERROR "Unknown VOXTRAL_BACKEND '${VOXTRAL_BACKEND}' (expected xnnpack, cuda or metal)")
endif()
