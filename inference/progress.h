/* progress.h — the progress of a run's chains on stderr: one line per chain
 * (phase, bar, iteration i/N, iterations a second, time left), redrawn in
 * place with ANSI cursor movement on a terminal, or plain lines at every
 * tenth of a chain, CmdStan's "Chain 1 Iteration:  200 / 2000 [ 10%]
 * (Warmup)", when stderr is a file or a pipe.  Engines whose one step does
 * much work (smc: a whole population through every observation) report
 * their own unit within it through EngineOpts.progress.
 *
 * Chains report from their own threads; the object locks its own state.
 * The driver owns it for one run; it writes only when the host asked for
 * progress (DriverOpts.progress). */
#ifndef PPL_PROGRESS_H
#define PPL_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef enum {
  PROGRESS_OFF = 0,
  PROGRESS_TERMINAL, /* one line per chain, redrawn in place (ANSI) */
  PROGRESS_LINES,    /* plain lines, no \r and no escape codes */
} ProgressMode;

typedef struct Progress Progress;

/* A display of nchains chains of warmup + iters iterations each on f; NULL
 * for PROGRESS_OFF (every function below accepts NULL and does nothing). */
Progress *progress_new(FILE *f, ProgressMode mode, int nchains, long warmup, long iters);
/* Chain c (0-based) has finished i iterations of its warmup (or, with
 * warmup false, of its sampling). */
void progress_iter(Progress *p, int c, bool warmup, long i);
/* Within the current iteration of chain c: done of total `unit`s (total 0:
 * not known yet), e.g. 45 of 100 "event"s of an SMC run. */
void progress_unit(Progress *p, int c, long done, long total, const char *unit);
/* Chain c stopped (finished, failed or interrupted): its line stays as it is. */
void progress_chain_end(Progress *p, int c);
/* The final lines (terminal: every chain's line once more). */
void progress_end(Progress *p);

/* The line of one chain as the display shows it, for tests: "chain 2
 * sampling [#####.....] 500/1000 ..." (terminal) or "Chain 2 Iteration: ..."
 * (lines); `now` is seconds since the display started. */
const char *progress_line(Progress *p, int c, double now);

#endif
