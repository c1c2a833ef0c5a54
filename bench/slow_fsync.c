/* A line-side PC's disk for the benchmarks: every fsync / fdatasync also waits BENCH_FSYNC_DELAY_US.
 *
 * This VM's disk has a write cache in front of it (an fsync costs 0.14-0.18 ms, stack.md section 5);
 * eMMC, SD cards and consumer SSDs without power-loss protection need ~1-20 ms. Loaded with
 * LD_PRELOAD by `bench/mqtt_pipeline.py --fsync-delay-ms`, it slows every pipeline of a run alike,
 * so each figure still stands next to a baseline that paid the same disk. The real call still runs
 * first: durability is unchanged, only the wait is longer. Never used by the product or the tests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us = -1;

static void disk_wait(void) {
    if (delay_us < 0) {
        const char *text = getenv("BENCH_FSYNC_DELAY_US");
        delay_us = text ? atol(text) : 0;
    }
    if (delay_us > 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    disk_wait();
    return rc;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    disk_wait();
    return rc;
}
