/* train.h — `ppl train` from a C test, as a user runs it: the tests of the
 * amortized posteriors (tests/sbc/test_sbc_amortized.c,
 * tests/exact/test_exact_amortized.c) train once through the command line
 * and then draw through ppl.h.  Header-only, for tests. */
#ifndef PPL_TESTS_TRAIN_H
#define PPL_TESTS_TRAIN_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

/* Runs `ppl train MODEL --data DATA --save SAVE OPTS...` (opts NULL-ended),
 * its output to SAVE.log; on failure the log's last lines go out as TAP
 * diagnostics.  *seconds (if not NULL) gets the wall time. */
static inline bool test_train(const char *ppl, const char *model, const char *data,
                              const char *save, const char *const *opts, double *seconds) {
  char log[1100];
  snprintf(log, sizeof log, "%s.log", save);
  const char *argv[40] = {ppl, "train", model, "--data", data, "--save", save};
  int n = 7;
  for (int i = 0; opts && opts[i] && n < 39; i++) argv[n++] = opts[i];
  argv[n] = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(127);
    execv(ppl, (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  bool ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (seconds) *seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  FILE *f = fopen(log, "r");
  char line[512], last[6][512] = {{0}};
  int k = 0;
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    snprintf(last[k++ % 6], sizeof last[0], "%s", line);
  }
  if (f) fclose(f);
  int from = k > 6 ? k - 6 : 0;
  if (!ok) tap_diag("ppl train %s failed (exit %d):", model, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  else if (k) tap_diag("ppl train %s: %s", model, last[(k - 1) % 6]);
  for (int i = from; !ok && i < k; i++) tap_diag("  %s", last[i % 6]);
  return ok;
}

#endif
