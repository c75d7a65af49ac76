/* test_progress.c — the per-chain progress display (inference/progress.c):
 * which lines the plain mode prints and when, that it never writes \r or
 * escape codes, and how the terminal mode redraws its lines in place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/value.h"
#include "inference/progress.h"
#include "tests/tap.h"

/* Everything written to f so far, as a string. */
static char *slurp(FILE *f) {
  fflush(f);
  long n = ftell(f);
  char *s = gc_alloc_atomic((size_t)n + 1);
  rewind(f);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  return s;
}

static int count(const char *s, const char *what) {
  int k = 0;
  for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) k++;
  return k;
}

/* Two chains, 100 warmup and 200 sampling iterations, one after the other:
 * plain lines at the first iteration, every tenth and the first sampling
 * iteration, as CmdStan prints them. */
static void test_lines(void) {
  FILE *f = tmpfile();
  Progress *p = progress_new(f, PROGRESS_LINES, 2, 100, 200);
  for (int c = 0; c < 2; c++) {
    for (long i = 1; i <= 100; i++) progress_iter(p, c, true, i);
    for (long i = 1; i <= 200; i++) {
      if (i == 200) nanosleep(&(struct timespec){0, 20000000}, NULL); /* a rate to show */
      progress_iter(p, c, false, i);
    }
    progress_chain_end(p, c);
  }
  progress_end(p);
  char *s = slurp(f);
  fclose(f);
  tap_ok(!strchr(s, '\r') && !strchr(s, '\033'), "lines: no \\r and no escape codes");
  /* per chain: iteration 1, ten tenths, and iteration 101 (Sampling) */
  tap_ok(count(s, "\n") == 2 * 12, "lines: 12 lines a chain (%d in all)", count(s, "\n"));
  tap_ok(strstr(s, "Chain 1 Iteration:   1 / 300 [  0%]  (Warmup)") != NULL, "lines: the first iteration");
  tap_ok(strstr(s, "Chain 2 Iteration:  90 / 300 [ 30%]  (Warmup)") != NULL, "lines: a tenth of the chain");
  tap_ok(strstr(s, "Chain 1 Iteration: 101 / 300 [ 33%]  (Sampling)") != NULL,
         "lines: the first sampling iteration starts the phase");
  tap_ok(strstr(s, "Chain 2 Iteration: 300 / 300 [100%]  (Sampling)") != NULL, "lines: the last iteration");
  const char *l = strstr(s, "Chain 1 Iteration: 300 / 300");
  tap_ok(l && strstr(l, " it/s, ") && strstr(l, " left"), "lines: rate and time left");
}

/* An engine's own unit: every tenth of a known total, in the chain's line. */
static void test_units(void) {
  FILE *f = tmpfile();
  Progress *p = progress_new(f, PROGRESS_LINES, 1, 0, 10);
  progress_iter(p, 0, false, 0 + 1);
  for (long e = 1; e <= 50; e++) progress_unit(p, 0, e, 50, "event");
  progress_end(p);
  char *s = slurp(f);
  fclose(f);
  /* the first event, then 5, 10, ... 50 */
  tap_ok(count(s, "(event ") == 11, "units: a line at the first event and every tenth (%d)", count(s, "(event "));
  tap_ok(strstr(s, "(event 50/50") != NULL, "units: done/total with the engine's name");
  tap_ok(strstr(s, "(Sampling)") != NULL, "units: no warmup: the chain starts sampling");
}

/* Terminal: one line per chain, the block redrawn by moving up. */
static void test_terminal(void) {
  FILE *f = tmpfile();
  Progress *p = progress_new(f, PROGRESS_TERMINAL, 3, 10, 10);
  tap_ok(strstr(progress_line(p, 2, 0), "chain 3  waiting") != NULL, "terminal: a chain not started waits");
  for (long i = 1; i <= 10; i++) progress_iter(p, 0, true, i);
  progress_iter(p, 0, false, 5);
  const char *l = progress_line(p, 0, 1.0);
  tap_ok(strstr(l, "chain 1  sampling [") && strstr(l, "]  5/10  ") && strstr(l, "#"),
         "terminal: phase, bar and i/N (%s)", l);
  for (long i = 6; i <= 10; i++) progress_iter(p, 0, false, i);
  progress_chain_end(p, 0);
  progress_end(p);
  char *s = slurp(f);
  fclose(f);
  tap_ok(count(s, "\033[3A") >= 1 && count(s, "\033[K") % 3 == 0,
         "terminal: redraws move up over the 3 lines and clear each");
  tap_ok(strstr(s, "done in") != NULL, "terminal: a finished chain says so");
  tap_ok(progress_new(stderr, PROGRESS_OFF, 2, 1, 1) == NULL, "off: no display");
  progress_iter(NULL, 0, true, 1); /* accepted, does nothing */
}

int main(void) {
  gc_init();
  test_lines();
  test_units();
  test_terminal();
  return tap_done();
}
