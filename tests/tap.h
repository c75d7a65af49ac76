/* tap.h — a minimal TAP producer for C unit tests (header-only).
 *
 *   tap_ok(cond, "name %d", i);
 *   tap_near(got, want, rel_tol, "name");   relative (absolute below 1) tolerance
 *   tap_streq(got, want, "name");
 *   return tap_done();                       prints the plan, exit status 0/1
 *
 * Output is line-buffered so a crash keeps earlier results.
 */
#ifndef PPL_TAP_H
#define PPL_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n_ = 0, tap_failed_ = 0;

static void tap_vreport_(int ok, const char *fmt, va_list ap) {
  if (tap_n_ == 0) setvbuf(stdout, NULL, _IOLBF, 0);
  tap_n_++;
  if (!ok) tap_failed_++;
  printf("%sok %d - ", ok ? "" : "not ", tap_n_);
  /* a name that quotes a multi-line text (a message, a summary) stays on
     the TAP line: its newlines become spaces */
  char name[4096];
  vsnprintf(name, sizeof name, fmt, ap);
  for (char *c = name; *c; c++)
    if (*c == '\n') *c = ' ';
  fputs(name, stdout);
  printf("\n");
}

__attribute__((format(printf, 2, 3), unused)) static int tap_ok(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tap_vreport_(ok, fmt, ap);
  va_end(ap);
  return ok;
}

__attribute__((format(printf, 1, 2), unused)) static void tap_diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

__attribute__((format(printf, 4, 5), unused)) static int tap_near(double got, double want, double tol,
                                                                  const char *fmt, ...) {
  double scale = fabs(want) > 1 ? fabs(want) : 1;
  int ok = (isnan(got) && isnan(want)) || (got == want) || fabs(got - want) <= tol * scale;
  va_list ap;
  va_start(ap, fmt);
  tap_vreport_(ok, fmt, ap);
  va_end(ap);
  if (!ok) printf("#   got %.17g, want %.17g (tol %g)\n", got, want, tol);
  return ok;
}

__attribute__((format(printf, 3, 4), unused)) static int tap_streq(const char *got, const char *want,
                                                                   const char *fmt, ...) {
  int ok = got && want && strcmp(got, want) == 0;
  va_list ap;
  va_start(ap, fmt);
  tap_vreport_(ok, fmt, ap);
  va_end(ap);
  if (!ok) printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)", want ? want : "(null)");
  return ok;
}

__attribute__((unused)) static int tap_done(void) {
  printf("1..%d\n", tap_n_);
  return tap_failed_ ? 1 : 0;
}

#endif
