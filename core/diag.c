/* diag.c — recording the first error of a stage with its source position. */
#include "diag.h"

#include <stdio.h>
#include <string.h>

void diag_init(Diag *d) {
  d->code = DIAG_OK;
  d->pos = (SrcPos){0};
  d->msg[0] = 0;
}

void diag_verror(Diag *d, DiagCode code, SrcPos pos, const char *fmt, va_list ap) {
  if (d->code != DIAG_OK) return;
  d->code = code;
  d->pos = pos;
  int n = 0;
  if (pos.line > 0 && pos.file)
    n = snprintf(d->msg, sizeof d->msg, "%s:%d:%d: ", pos.file, pos.line, pos.col);
  else if (pos.line > 0)
    n = snprintf(d->msg, sizeof d->msg, "%d:%d: ", pos.line, pos.col);
  else if (pos.file)
    n = snprintf(d->msg, sizeof d->msg, "%s: ", pos.file);
  if (n < 0 || (size_t)n >= sizeof d->msg) n = 0;
  vsnprintf(d->msg + n, sizeof d->msg - (size_t)n, fmt, ap);
  /* messages are one line: fold any newline a caller let through */
  for (char *p = d->msg; *p; p++)
    if (*p == '\n') *p = ' ';
}

void diag_error(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, code, pos, fmt, ap);
  va_end(ap);
}
