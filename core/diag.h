/* diag.h — source positions and error reporting shared by every stage.
 *
 * A Diag collects the first error of a stage (later ones are usually consequences
 * of the first) as a code plus a one-line message "file:line:col: message".
 * Stages never print or exit: they fill a Diag and return failure; the CLI or
 * the embedding API decides what to do with it.
 */
#ifndef PPL_DIAG_H
#define PPL_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct SrcPos {
  const char *file; /* GC string or static; "<string>" for models given as text */
  int line, col;    /* 1-based; line 0 = no position */
} SrcPos;

/* Error classes; the values equal ppl.h's ppl_status codes. */
typedef enum {
  DIAG_OK = 0,
  DIAG_USAGE = 1,   /* bad option or API misuse */
  DIAG_SYNTAX = 2,  /* lexical or syntax error */
  DIAG_TYPE = 3,    /* semantic error: types, shapes, names, misuse of ~ */
  DIAG_DATA = 4,    /* data file missing, malformed or not matching the data block */
  DIAG_RUNTIME = 5, /* error while running the model (bad parameter, index out of range, ...) */
  DIAG_IO = 6,      /* file could not be read or written */
  DIAG_INTERNAL = 7, /* a bug in ppl */
  DIAG_NOMEM = 8,    /* an allocation failed (a GcGuard caught it) */
  DIAG_INTERRUPTED = 9 /* the host asked the run to stop before any draw was kept */
} DiagCode;

typedef struct Diag {
  DiagCode code; /* DIAG_OK until the first error */
  SrcPos pos;
  char msg[1024]; /* full message with position prefix, no trailing newline;
                     a hint (diag_hint) follows on a second line */
} Diag;

void diag_init(Diag *d);
/* Record an error unless one is already recorded. pos.line == 0 omits the
 * position; pos.file == NULL with a line prints "line:col: ...".
 * Message form: "file:line:col: error text" (no "error:" word). */
void diag_error(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_verror(Diag *d, DiagCode code, SrcPos pos, const char *fmt, va_list ap);
/* Add a hint to the recorded error, on its own line after it:
 * "file:line:col: hint: text" (how to say it the ppl way, for a habit from
 * Stan).  Nothing happens without a recorded error, or when it has a hint.
 * Hosts print the message's first line as the error and the rest after it. */
void diag_hint(Diag *d, SrcPos pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline bool diag_failed(const Diag *d) { return d->code != DIAG_OK; }
/* The whole file as a GC string (gc_read_file), or NULL with "cannot read
 * PATH: REASON" (DIAG_IO) in d: what every reader of a named file says. */
char *diag_read_file(const char *path, size_t *len, Diag *d);

#endif
