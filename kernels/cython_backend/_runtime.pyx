# OpenMP runtime knobs for the Cython kernels; serial stubs when built without OpenMP.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fc_openmp_enabled(void) { return 1; }
    static void fc_set_num_threads(int n) { omp_set_num_threads(n); }
    static int fc_get_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fc_openmp_enabled(void) { return 0; }
    static void fc_set_num_threads(int n) { (void)n; }
    static int fc_get_max_threads(void) { return 1; }
    #endif
    """
    int fc_openmp_enabled()
    void fc_set_num_threads(int n)
    int fc_get_max_threads()


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(fc_openmp_enabled())


def set_num_threads(int n):
    """Set the OpenMP thread count used by the Cython kernels' parallel loops."""
    fc_set_num_threads(n)


def get_num_threads():
    """OpenMP's current maximum thread count (1 when built without OpenMP)."""
    return fc_get_max_threads()
