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

/* "file:line:col: " for pos into buf (cap > 0); returns its length. */
static int diag_prefix(char *buf, size_t cap, SrcPos pos) {
  int n = 0;
  if (pos.line > 0 && pos.file)
    n = snprintf(buf, cap, "%s:%d:%d: ", pos.file, pos.line, pos.col);
  else if (pos.line > 0)
    n = snprintf(buf, cap, "%d:%d: ", pos.line, pos.col);
  else if (pos.file)
    n = snprintf(buf, cap, "%s: ", pos.file);
  else
    buf[0] = 0;
  if (n < 0 || (size_t)n >= cap) n = 0, buf[0] = 0;
  return n;
}

void diag_hint(Diag *d, SrcPos pos, const char *fmt, ...) {
  if (d->code == DIAG_OK || strchr(d->msg, '\n')) return;
  char text[768];
  int n = diag_prefix(text, sizeof text, pos);
  va_list ap;
  va_start(ap, fmt);
  n += snprintf(text + n, sizeof text - (size_t)n, "hint: ");
  vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
  va_end(ap);
  for (char *p = text; *p; p++)
    if (*p == '\n') *p = ' ';
  size_t len = strlen(d->msg);
  snprintf(d->msg + len, sizeof d->msg - len, "\n%s", text);
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
  int n = diag_prefix(d->msg, sizeof d->msg, pos);
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
