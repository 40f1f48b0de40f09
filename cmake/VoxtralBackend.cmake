# Finds the runtimes of the program backends and defines the interface targets libvoxtral
# links: voxtral_backend (ExecuTorch, always) and, when VOXTRAL_BACKENDS names aoti,
# voxtral_backend_aoti (libtorch). Sets VOXTRAL_BACKENDS_BUILT, the list in canonical order.
#
# xnnpack: the prebuilt ExecuTorch runtime shipped in the executorch==1.5.1 wheel (never
#   built from source). Its CMake package lives in site-packages; we ask the Python
#   interpreter of the current environment (the build environment under pip) where the
#   package is, unless EXECUTORCH_ROOT names it. Always built: it runs the CPU programs,
#   and our custom op kernels run on its thread pool.
# aoti: AOTInductor packages (.pt2) through libtorch's AOTIModelPackageLoader: the CUDA
#   backend, and the same code on the CPU for tests. libtorch comes from the current
#   Python's torch (torch.utils.cmake_prefix_path), unless Torch_ROOT names it.
#
# VOXTRAL_BACKEND (one name, the older option) still works: xnnpack adds nothing, cuda and
# metal add aoti (metal: AOTInductor's MPS device, untested).

set(_backends ${VOXTRAL_BACKENDS})
string(REPLACE "," ";" _backends "${_backends}")  # "xnnpack,aoti" is easier to quote
if(VOXTRAL_BACKEND STREQUAL "xnnpack")
  list(APPEND _backends xnnpack)
elseif(VOXTRAL_BACKEND STREQUAL "cuda" OR VOXTRAL_BACKEND STREQUAL "metal")
  list(APPEND _backends xnnpack aoti)
elseif(VOXTRAL_BACKEND)
  message(FATAL_ERROR "Unknown VOXTRAL_BACKEND '${VOXTRAL_BACKEND}' (expected xnnpack, cuda or metal; "
                      "or use VOXTRAL_BACKENDS, a list of xnnpack and aoti)")
endif()
foreach(_b IN LISTS _backends)
  if(NOT _b MATCHES "^(xnnpack|aoti)$")
    message(FATAL_ERROR "Unknown backend '${_b}' in VOXTRAL_BACKENDS='${VOXTRAL_BACKENDS}' (expected xnnpack, aoti)")
  endif()
endforeach()
if(NOT "xnnpack" IN_LIST _backends)
  message(FATAL_ERROR "VOXTRAL_BACKENDS='${VOXTRAL_BACKENDS}' lacks xnnpack: the ExecuTorch backend is always "
                      "built (CPU programs, and the custom op kernels' thread pool). Use \"xnnpack;aoti\".")
endif()
set(VOXTRAL_BACKENDS_BUILT xnnpack)
if("aoti" IN_LIST _backends)
  list(APPEND VOXTRAL_BACKENDS_BUILT aoti)
endif()
message(STATUS "voxtral: backends ${VOXTRAL_BACKENDS_BUILT}")

# --- xnnpack: ExecuTorch -------------------------------------------------------------
if(NOT EXECUTORCH_ROOT)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
            "import executorch, sys; sys.stdout.write(list(executorch.__path__)[0])"
    OUTPUT_VARIABLE _executorch_root RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0 OR NOT _executorch_root)
    message(FATAL_ERROR
      "The xnnpack backend needs the ExecuTorch runtime from the executorch==1.5.1 wheel, "
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

# --- aoti: libtorch --------------------------------------------------------------------
if("aoti" IN_LIST VOXTRAL_BACKENDS_BUILT)
  if(NOT Torch_ROOT)
    execute_process(
      COMMAND "${Python3_EXECUTABLE}" -c "import sys, torch.utils; sys.stdout.write(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _torch_prefix RESULT_VARIABLE _rc ERROR_QUIET)
    if(NOT _rc EQUAL 0 OR NOT _torch_prefix)
      message(FATAL_ERROR
        "The aoti backend needs libtorch from PyTorch, but `${Python3_EXECUTABLE}` cannot import torch. "
        "Install torch (the version you will run with) and, under pip, build without isolation so the "
        "build sees it: pip install -e . --no-build-isolation -Ccmake.define.VOXTRAL_BACKENDS=\"xnnpack;aoti\" "
        "(or pass -DTorch_ROOT=<libtorch>/share/cmake/Torch).")
    endif()
    set(Torch_ROOT "${_torch_prefix}/Torch")
  endif()
  unset(Torch_DIR CACHE)  # as for ExecuTorch: the build environment may be new each time
  find_package(Torch REQUIRED CONFIG PATHS "${Torch_ROOT}" NO_DEFAULT_PATH)
  # libvoxtral's own files pass std::string across its API and into the AOTI backend's
  # file; a libtorch of the old string ABI would need every file built that way.
  if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR "libtorch at ${Torch_ROOT} uses the pre-C++11 string ABI; libvoxtral needs the new one")
  endif()
  set(VOXTRAL_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
  message(STATUS "voxtral: libtorch ${Torch_VERSION} from ${VOXTRAL_TORCH_LIBDIR}")
  add_library(voxtral_backend_aoti INTERFACE)
  target_link_libraries(voxtral_backend_aoti INTERFACE torch)
  target_compile_definitions(voxtral_backend_aoti INTERFACE VOXTRAL_BACKEND_AOTI=1)
  # A CUDA libtorch: the backend also captures CUDA graphs (ATen's CUDAGraph, c10's CUDA
  # streams: libtorch_cuda and libc10_cuda, linked by name as libtorch's own users do).
  set(VOXTRAL_AOTI_CUDA OFF)
  if(TARGET torch_cuda AND TARGET c10_cuda)
    set(VOXTRAL_AOTI_CUDA ON)
    target_link_libraries(voxtral_backend_aoti INTERFACE torch_cuda c10_cuda)
    target_compile_definitions(voxtral_backend_aoti INTERFACE VOXTRAL_AOTI_CUDA=1)
  endif()
  message(STATUS "voxtral: aoti backend with CUDA graphs: ${VOXTRAL_AOTI_CUDA}")
endif()
