/* The memory bandwidth probe of `variant bandwidth` (host/bandwidth.py compiles and runs it).
 *
 *   bwprobe THREADS BYTES REPS
 *
 * THREADS threads, each pinned to one CPU of the process's affinity (round
 * robin: the CPUs taskset or a profile left it, like the benchmarks), share a
 * buffer of BYTES split in equal parts. Each thread first writes its own part
 * (first touch: on a NUMA machine the pages land on the thread's node, as a
 * model's pages land where llama.cpp's threads fault them in), then every
 * repetition:
 *
 *   read   each thread sums its part as 64-byte vectors of 64-bit integers
 *          (GCC's vector extension: the widest loads the target has, four
 *          independent sums in flight; integer adds need no -ffast-math):
 *          the traffic of a matrix-vector product over weights, which is
 *          what token generation does;
 *   triad  STREAM's a[i] = b[i] + s * c[i] over three arrays of doubles, each
 *          a third of the part, counted as STREAM counts it (24 bytes per
 *          element, the write-allocate read not counted).
 *
 * A repetition is timed from a barrier all threads pass to the barrier after
 * the last one finished, so a slow thread counts. One untimed repetition of
 * each comes first. The buffer is kept off transparent huge pages
 * (MADV_NOHUGEPAGE), as a model's file pages are mapped by llama.cpp's mmap,
 * whatever the machine's THP setting. Output, one line per timed repetition:
 * "read GB/s" or
 * "triad GB/s" (GB = 1e9 bytes). Exit 2 on bad arguments, 1 when the buffer
 * cannot be had.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct shared {
    pthread_barrier_t start, done;
    size_t part;            /* bytes per thread, a multiple of UNIT */
    unsigned char *buf;
    int threads, reps;
    double *read_s, *triad_s; /* per repetition, written by thread 0 */
};

struct worker {
    struct shared *sh;
    int index, cpu;
    uint64_t sum; /* the reads' result, the thread's own: kept so the reads are not optimised away */
};

/* 64 bytes: one cache line, one AVX-512 register (two AVX2 ones, four SSE ones where that is all there is) */
typedef uint64_t line_t __attribute__((vector_size(64)));
/* a part holds whole groups of four lines (the read) and three arrays of whole lines (the triad) */
#define UNIT (3 * 4 * sizeof(line_t))

static volatile uint64_t sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t read_part(const line_t *p, size_t n) {
    line_t a = {0}, b = {0}, c = {0}, d = {0};
    for (size_t i = 0; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    a += b + c + d;
    uint64_t sum = 0;
    for (size_t j = 0; j < sizeof(line_t) / sizeof(uint64_t); j++) {
        sum += a[j];
    }
    return sum;
}

static void triad_part(double *a, const double *b, const double *c, size_t n) {
    const double s = 3.0;
    for (size_t i = 0; i < n; i++) {
        a[i] = b[i] + s * c[i];
    }
}

/* One timed phase: every thread between the two barriers; thread 0 keeps the time. */
static void phase(struct worker *w, int triad, double *seconds) {
    struct shared *sh = w->sh;
    unsigned char *mine = sh->buf + (size_t)w->index * sh->part;
    double t0 = 0.0;
    pthread_barrier_wait(&sh->start);
    if (w->index == 0) {
        t0 = now();
    }
    if (triad) {
        size_t n = sh->part / 3 / sizeof(double);
        double *a = (double *)mine;
        triad_part(a, a + n, a + 2 * n, n);
    } else {
        w->sum += read_part((const line_t *)mine, sh->part / sizeof(line_t));
    }
    pthread_barrier_wait(&sh->done);
    if (w->index == 0 && seconds) {
        *seconds = now() - t0;
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    struct shared *sh = w->sh;
    cpu_set_t *set = CPU_ALLOC(w->cpu + 1);
    size_t size = CPU_ALLOC_SIZE(w->cpu + 1);
    if (set) {
        CPU_ZERO_S(size, set);
        CPU_SET_S(w->cpu, size, set);
        /* best effort: a CPU taken away meanwhile leaves the thread where the scheduler puts it */
        (void)pthread_setaffinity_np(pthread_self(), size, set);
        CPU_FREE(set);
    }
    unsigned char *mine = sh->buf + (size_t)w->index * sh->part;
    memset(mine, 1 + w->index, sh->part); /* first touch, and no zero page behind the reads */
    phase(w, 0, NULL);
    phase(w, 1, NULL);
    for (int r = 0; r < sh->reps; r++) {
        phase(w, 0, &sh->read_s[r]);
        phase(w, 1, &sh->triad_s[r]);
    }
    return NULL;
}

static int parse(const char *text, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    long long threads, bytes, reps;
    if (argc != 4 || parse(argv[1], 1, 4096, &threads) || parse(argv[2], 1 << 20, 1LL << 40, &bytes) ||
        parse(argv[3], 1, 1000, &reps)) {
        fprintf(stderr, "usage: bwprobe THREADS(1-4096) BYTES(>= 1 MiB) REPS(1-1000)\n");
        return 2;
    }
    /* a set as large as the kernel's CPU numbers: past CPU_SETSIZE (1024) on the largest machines */
    long configured = sysconf(_SC_NPROCESSORS_CONF);
    int max_cpus = configured > 0 && configured < (1 << 20) ? (int)configured : CPU_SETSIZE;
    cpu_set_t *allowed = CPU_ALLOC(max_cpus);
    size_t set_size = CPU_ALLOC_SIZE(max_cpus);
    int *cpus = calloc((size_t)max_cpus, sizeof(int)), n_cpus = 0;
    if (!allowed || !cpus || sched_getaffinity(0, set_size, allowed) != 0) {
        perror("sched_getaffinity");
        return 1;
    }
    for (int c = 0; c < max_cpus; c++) {
        if (CPU_ISSET_S(c, set_size, allowed)) {
            cpus[n_cpus++] = c;
        }
    }
    if (n_cpus == 0) {
        fprintf(stderr, "bwprobe: no CPU to run on\n");
        return 1;
    }
    struct shared sh = {.threads = (int)threads, .reps = (int)reps};
    sh.part = (size_t)bytes / (size_t)threads / UNIT * UNIT;
    if (sh.part == 0) {
        fprintf(stderr, "bwprobe: %lld bytes is too small for %lld threads\n", bytes, threads);
        return 2;
    }
    size_t total = sh.part * (size_t)threads;
    sh.buf = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#ifdef MADV_NOHUGEPAGE
    if (sh.buf != MAP_FAILED) {
        (void)madvise(sh.buf, total, MADV_NOHUGEPAGE); /* a kernel without THP refuses: nothing to undo */
    }
#endif
    sh.read_s = calloc((size_t)reps, sizeof(double));
    sh.triad_s = calloc((size_t)reps, sizeof(double));
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    pthread_t *ids = calloc((size_t)threads, sizeof(*ids));
    if (sh.buf == MAP_FAILED || !sh.read_s || !sh.triad_s || !ws || !ids) {
        fprintf(stderr, "bwprobe: cannot allocate %zu bytes\n", total);
        return 1;
    }
    pthread_barrier_init(&sh.start, NULL, (unsigned)threads);
    pthread_barrier_init(&sh.done, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        ws[i] = (struct worker){.sh = &sh, .index = i, .cpu = cpus[i % n_cpus]};
        if (i > 0 && pthread_create(&ids[i], NULL, run, &ws[i]) != 0) {
            fprintf(stderr, "bwprobe: cannot start thread %d\n", i);
            return 1;
        }
    }
    run(&ws[0]);
    for (int i = 1; i < threads; i++) {
        pthread_join(ids[i], NULL);
    }
    for (int i = 0; i < threads; i++) {
        sink += ws[i].sum;
    }
    for (int r = 0; r < reps; r++) {
        printf("read %.4f\n", (double)total / sh.read_s[r] / 1e9);
        printf("triad %.4f\n", (double)total / sh.triad_s[r] / 1e9);
    }
    return 0;
}
