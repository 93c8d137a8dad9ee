# OpenMP runtime knobs for the Cython kernels; serial stubs when built without OpenMP.
# Also the threads callback that runs OpenBLAS's parallel jobs on OpenMP's team
# (kernels/_pool.py installs it), so NumPy's and SciPy's BLAS share fastconv's threads.

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdlib.h>
    #include <pthread.h>
    typedef void (*fc_blas_job)(int thread, void *job, int arg);
    #ifdef _OPENMP
    #include <omp.h>
    static int fc_openmp_enabled(void) { return 1; }
    static void fc_set_num_threads(int n) { omp_set_num_threads(n); }
    static int fc_get_max_threads(void) { return omp_get_max_threads(); }

    struct fc_job_thread { fc_blas_job job; void *data; int index; int arg; };

    static void *fc_job_thread_main(void *p) {
        struct fc_job_thread *t = (struct fc_job_thread *)p;
        t->job(t->index, t->data, t->arg);
        return NULL;
    }

    /* OpenBLAS's jobs wait on one another (a GEMM's threads share packed panels), so
       each needs a thread of its own: where OpenMP cannot promise a team of njobs
       (inside a parallel region, a thread limit, dynamic teams) they get pthreads. */
    static int fc_jobs_on_pthreads(fc_blas_job job, int njobs, size_t size, char *jobs,
                                   int arg) {
        struct fc_job_thread *t = malloc((size_t)njobs * sizeof *t);
        pthread_t *id = malloc((size_t)njobs * sizeof *id);
        int i, started = 1;
        if (t == NULL || id == NULL) { free(t); free(id); return -1; }
        for (i = 0; i < njobs; i++) {
            t[i].job = job; t[i].data = jobs + (size_t)i * size; t[i].index = i;
            t[i].arg = arg;
        }
        for (i = 1; i < njobs; i++) {
            if (pthread_create(&id[i], NULL, fc_job_thread_main, &t[i]) != 0) break;
            started++;
        }
        /* Where the system refuses a thread, the jobs left run here in turn. */
        for (i = started; i < njobs; i++) fc_job_thread_main(&t[i]);
        fc_job_thread_main(&t[0]);
        for (i = 1; i < started; i++) pthread_join(id[i], NULL);
        free(t); free(id);
        return 0;
    }

    static void fc_blas_threads(int sync, fc_blas_job job, int njobs, size_t size,
                                void *jobs, int arg) {
        (void)sync;
        if (njobs <= 1) {
            if (njobs == 1) job(0, jobs, arg);
            return;
        }
        if (omp_in_parallel() || omp_get_dynamic() || njobs > omp_get_thread_limit()) {
            if (fc_jobs_on_pthreads(job, njobs, size, (char *)jobs, arg) == 0) return;
        }
        #pragma omp parallel num_threads(njobs)
        {
            int i, t = omp_get_thread_num(), n = omp_get_num_threads();
            for (i = t; i < njobs; i += n) job(i, (char *)jobs + (size_t)i * size, arg);
        }
    }
    static size_t fc_blas_threads_address(void) { return (size_t)&fc_blas_threads; }
    #else
    static int fc_openmp_enabled(void) { return 0; }
    static void fc_set_num_threads(int n) { (void)n; }
    static int fc_get_max_threads(void) { return 1; }
    static size_t fc_blas_threads_address(void) { return 0; }
    #endif
    """
    int fc_openmp_enabled()
    void fc_set_num_threads(int n)
    int fc_get_max_threads()
    size_t fc_blas_threads_address()


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(fc_openmp_enabled())


def set_num_threads(int n):
    """Set the OpenMP thread count used by the Cython kernels' parallel loops."""
    fc_set_num_threads(n)


def get_num_threads():
    """OpenMP's current maximum thread count (1 when built without OpenMP)."""
    return fc_get_max_threads()


def blas_threads_callback():
    """Address of the C function that runs OpenBLAS's parallel jobs on OpenMP threads, for
    ``openblas_set_threads_callback_function``; 0 when built without OpenMP."""
    return fc_blas_threads_address()
