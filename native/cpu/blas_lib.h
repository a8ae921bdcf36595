// The BLAS/LAPACK library the cpu-blas backend runs on, loaded at run time (dlopen) as the
// cuda backend loads the CUDA libraries: the addon links none, so one binary (the prebuilt one
// included) serves machines with BLIS, OpenBLAS, MKL or none of them (then the portable
// backend runs). Only the Fortran BLAS/LAPACK ABI (LP64) is used, which all three export, plus
// each library's own thread control; where BLIS is loaded and matches the blis.h this was built
// with, its typed API also gives per-call thread counts (blas_backend.cc).
#pragma once
#include <string>

namespace embmap::blas {

enum class Vendor { Blis, OpenBlas, Mkl };

// Fortran ABI: every argument by pointer, column-major, 32-bit integers.
template <typename T>
struct Fortran {
  void (*gemm)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
               const int*, const T*, const int*, const T*, T*, const int*);
  void (*syrk)(const char*, const char*, const int*, const int*, const T*, const T*, const int*,
               const T*, T*, const int*);
  void (*trsm)(const char*, const char*, const char*, const char*, const int*, const int*,
               const T*, const T*, const int*, T*, const int*);
  void (*potrf)(const char*, const int*, T*, const int*, int*);
  void (*gelsd)(const int*, const int*, const int*, T*, const int*, T*, const int*, T*, const T*,
                int*, T*, const int*, int*, int*);
  void (*syevd)(const char*, const char*, const int*, T*, const int*, T*, T*, const int*, int*,
                const int*, int*);
  void (*gesdd)(const char*, const int*, const int*, T*, const int*, T*, T*, const int*, T*,
                const int*, T*, const int*, int*, int*);
};

struct Library {
  Vendor vendor;
  void* blas = nullptr;    // the BLAS library's handle (dlsym for vendor extras)
  std::string description;  // e.g. "BLIS 0.9.0 (libblis.so.4) + LAPACK /usr/lib/.../liblapack.so.3"
  Fortran<float> s{};
  Fortran<double> d{};
  // The library's global thread count (BLIS: bli_thread_set_num_threads).
  void (*setThreads)(int) = nullptr;
};

// The first library found: EMBMAP_BLAS (blis, openblas, mkl or none) narrows the search.
// Null, with `whyNot` saying what was looked for and how to install one, when none loads.
const Library* load(std::string* whyNot);

}  // namespace embmap::blas
