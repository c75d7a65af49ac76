/* diag.c — recording the first error of a stage with its source position. */
#define _GNU_SOURCE /* GNU strerror_r */
#include "diag.h"

#include <stdio.h>
#include <string.h>

#include "value.h"

char *diag_read_file(const char *path, size_t *len, Diag *d) {
  int err;
  char *text = gc_read_file(path, len, &err);
  if (!text) {
    char ebuf[256];
    diag_error(d, DIAG_IO, (SrcPos){0}, "cannot read %s: %s", path,
               strerror_r(err, ebuf, sizeof ebuf));
  }
  return text;
}

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
