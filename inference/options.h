/* options.h — engine options described by tables, and a store of their values.
 *
 * Each engine declares its options as a table of OptSpec (name, type, default,
 * range, help); the common options of every run are one more table in
 * engine.c.  The CLI, `ppl run --help`, the API (ppl_run_set) and docs/cli.md
 * are generated from these tables, so an engine's options live in the
 * engine's own file.  Values are parsed and validated once, here, with the
 * message the user sees ("--draws expects an integer from 1 to 100000000, got
 * 'many'"); engines then read typed values from an OptSet by name.
 */
#ifndef PPL_OPTIONS_H
#define PPL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum OptType { OPT_INT, OPT_REAL, OPT_BOOL, OPT_ENUM, OPT_TEXT } OptType;
/* OPT_TEXT: any text, kept in OptValue.path ("": none) */

typedef struct OptSpec {
  const char *name;   /* CLI spelling without the dashes: "particles", "adapt-delta" */
  OptType type;
  const char *def;    /* the default as text, parsed like a user's value: "1000",
                         "0.8", "diag", "false" */
  int64_t ilo, ihi;   /* OPT_INT: inclusive range */
  double rlo, rhi;    /* OPT_REAL: range, finite values only; rhi = INFINITY for none */
  bool rlo_open;      /* OPT_REAL: rlo itself excluded (rlo 0, open: "positive") */
  const char *const *choices; /* OPT_ENUM: NULL-terminated; the value is the index */
  const char *arg;    /* the value's name in help: "N", "X", "SCHEME" */
  const char *help;   /* one line */
  bool or_file;       /* OPT_REAL, OPT_ENUM: text that is neither a number nor a
                         choice and has a '.' or '/' is a file (starting with
                         '{': JSON text), kept in OptValue.path: --init R|FILE,
                         --metric KIND|FILE */
  bool repeat;        /* may be given several times: each value is kept (--lm) */
} OptSpec;

/* A table ends with an entry whose name is NULL. */
#define OPT_END {0}

/* A parsed value: integers and enum indices in i, reals in r, bools as i 0/1;
 * for an or_file option given a file, path (GC memory) and i, r left 0. */
typedef struct OptValue {
  int64_t i;
  double r;
  const char *path;
} OptValue;

/* Parse text as a value of spec; false with a message in err ("--X expects
 * ..., got 'text'") when it is not one or is out of range. */
bool opt_parse(const OptSpec *spec, const char *text, OptValue *out, char *err, size_t n);
/* Validate a value given as a number (API fields); the same messages. */
bool opt_check_int(const OptSpec *spec, int64_t v, char *err, size_t n);
bool opt_check_real(const OptSpec *spec, double v, char *err, size_t n);
/* The default of spec (its def parsed; the registry test checks that it does). */
OptValue opt_default(const OptSpec *spec);
/* "integer", "number", "bool", "one of diag, dense, unit" */
const char *opt_type_text(const OptSpec *spec);
/* The range as text for help and docs: "1 to 1024", "> 0", "0 to 1", "" */
const char *opt_range_text(const OptSpec *spec);
/* The value as text ("1000", "0.8", "dense", "true"). */
const char *opt_value_text(const OptSpec *spec, OptValue v);

/* Edit distance with transpositions, for "did you mean ...?". */
int opt_distance(const char *a, const char *b);

/* Values of options given for one run, by spec.  GC memory; a missing
 * option reads as its default. */
typedef struct OptSet {
  int n, cap;
  const OptSpec **spec;
  OptValue *val;
} OptSet;

OptSet *opt_set_new(void);
/* Set (or replace) the value of spec; a repeat option's values are all kept,
   in order. */
void opt_set_put(OptSet *s, const OptSpec *spec, OptValue v);
/* The entry for the option named name, or NULL (s may be NULL). */
const OptValue *opt_set_get(const OptSet *s, const char *name);

#endif
