/* driver.c — chains, threads, CSV files, progress and the summary of a run.
 *
 * Determinism: chain k always runs engine state init(..., k), writes only its
 * own CSV file and its own Chain slot, and threads merely decide which chain
 * runs when.  So files and draws are identical for any thread count; only
 * the elapsed times in the CSV trailers differ.
 *
 * Columns come from the first kept draw of each chain (output sizes are
 * known only at run time); every later draw, and every other chain, must
 * produce the same shapes, because a CSV file has one header.
 *
 * Out of memory: each chain runs under a GcGuard, so a failed allocation
 * ends that chain with DIAG_NOMEM like any other chain error.  No driver lock
 * is held while a chain allocates (r->mu guards only the chain counter and
 * the progress line); locks below (the interpreter's cache, the JIT) may stay
 * held after such a jump, which is why the API retires the model (ppl.h).
 *
 * Interrupts: the host's flag (DriverOpts.interrupt) is read before every
 * iteration; a chain that sees it stops between draws, so its CSV holds whole
 * rows, and the result keeps the fewest draws any chain kept. */
#define _GNU_SOURCE /* strerror_r returning char * (thread-safe messages) */
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "choices.h"
#include "csv.h"
#include "mpi_run.h"
#include "progress.h"
#include "psis.h"
#include "summary.h"

struct RunResult {
  const char *engine, *engine_reason;
  const char *backend; /* chain 1's (EngineVT.backend), or NULL */
  int nchains, ndraws, ncols;
  const char **names, **labels;
  double **data; /* data[c][col * ndraws + i] */
  double **lw;   /* weighted engines: lw[c][i]; else NULL */
  SummaryStats *stats;
  bool weighted;
  double logz, logz_se;
  double weights_ess; /* weighted: Kish ESS of all the weights; else NaN */
  double pareto_k;    /* weighted: PSIS k-hat of all the weights; else NaN */
  double *chain_logz; /* each chain's log evidence estimate; NULL if none */
  RunWarning *warnings;
  int nwarnings;
  char *warnings_text; /* as the table prints them; "" when none */
  char *summary_text;
  double *warm_s, *samp_s;
  bool interrupted;
  SummaryRun sr; /* what the table and the JSON say besides the columns */
  SummaryVi *vi; /* variational runs; else NULL */
  const char **choices_paths; /* per chain, the choices file written; NULL: none */
};

/* One chain's state and results; written only by the thread running it. */
typedef struct Chain {
  int id; /* 0-based */
  long asks;            /* iterations that could ask the other ranks to stop */
  FILE *csv;
  const char *csv_path;
  bool csv_shared;      /* stdout: flushed, never closed */
  CsvCols cols;         /* the current draw's columns (names from the first) */
  const char **names;   /* fixed at the first kept draw */
  bool *is_int;
  int ncols;
  int nlat;             /* nested latents (Draw.latents) at the first kept draw */
  const char **lat_addr;/* and their addresses: every later draw has the same */
  int *out_nd;          /* per output: csv_shape() at the first kept draw */
  int (*out_dims)[CSV_MAX_DIMS];
  double *data, *lw;
  bool failed;          /* an engine or output error (not a stop request) */
  Diag d;
  double warm_s, samp_s;
  const char *adapt;    /* engine's adaptation lines, written after the header */
  double logz;          /* engine's own log evidence estimate (NAN if none) */
  double logz_se;       /* and its own standard error (NAN if none) */
  const char *notes;    /* engine's line for the summary */
  long rejecting, transitions; /* EngineVT.rejections */
  const char *reject_first, *reject_latent;
  const char *backend;  /* how the engine runs the log density (EngineVT.backend) */
  ViReport vi;          /* EngineVT.vi_report */
  bool has_vi;
  FILE *chf;            /* the choices file (choices.h), or NULL */
  const char *chf_path;
  ChoiceLog *clog;      /* the kept draws' choices for the summary, or NULL */
  int kept;             /* draws recorded */
  bool interrupted;     /* stopped by the host's interrupt flag */
  char *mem;            /* chains across MPI ranks: the CSV text a rank other than
                           0 writes for rank 0 (open_memstream) */
  size_t mem_n;
} Chain;

typedef struct Run {
  const Interp *in;
  const EngineVT *eng;
  const DriverOpts *o;
  int noutputs;
  const IrOutput *outputs;
  bool nested_cols;     /* fixed structure: nested latents get columns */
  const char *nested_note; /* else, when it has some, why they have none */
  bool choices;         /* each chain writes its choices file */
  bool choices_table;   /* nested latents without columns: the summary's table */
  const char **nested_sel; /* --include / --exclude names that are nested latents' */
  int nnested_sel;
  int warmup, iters;    /* warmup iterations used, sampling iterations */
  Chain *chains;
  int m, n;             /* chains and draws per chain in the result: the options'
                           unless interrupted */
  pthread_mutex_t mu;   /* guards next_chain */
  int next_chain;
  atomic_int stop;      /* set when a chain fails: the others end early */
  bool *keep;           /* per output: written (--include / --exclude) */
  Progress *prog;       /* NULL = no progress shown */
  EngineOpts eo;        /* the run's engine options, with the progress hook */
  int rank, nranks;     /* this process among the run's MPI ranks (0 of 1: alone) */
  bool split;           /* chains across ranks (DriverOpts.mpi_chains) */
} Run;

void driver_opts_default(DriverOpts *o) {
  memset(o, 0, sizeof *o);
  engine_opts_default(&o->eng);
}

/* CPU seconds of the calling thread: a chain runs on one thread from start
 * to end, so differences are the chain's CPU time, which is what CmdStan's
 * "Elapsed Time" lines report (and what stays meaningful on a loaded
 * machine, where wall time is not). */
static double dr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *dr_strerror(int e, char *buf, size_t n) { return strerror_r(e, buf, n); }

/* "examples/eight_schools.ppl" -> "eight_schools" */
static const char *dr_short_name(const char *s) {
  if (!s) return NULL;
  const char *b = strrchr(s, '/');
  b = b ? b + 1 : s;
  const char *dot = strrchr(b, '.');
  return dot && dot != b ? gc_strndup(b, (size_t)(dot - b)) : gc_strdup(b);
}

static bool dr_is_string(Type t) { return t.base == TY_STRING; }

static bool dr_is_scalar(Type t) {
  return t.ndims == 0 && (t.base == TY_INT || t.base == TY_REAL || t.base == TY_BOOL);
}

/* ---- output selection --------------------------------------------------- */

/* Whether name is a latent's declared name that no output has: a latent in
   a loop, a branch or a function, written under its addresses. */
static bool dr_is_nested_name(const IrProgram *prog, const char *name) {
  if (!prog) return false;
  const IrAnalysis *a = ir_analyze(prog);
  const char *slash = strrchr(name, '/'); /* "f/x": x of function f */
  for (int i = 0; i < a->nlatents; i++)
    if (!strcmp(a->latents[i].name, slash ? slash + 1 : name)) return true;
  return false;
}

/* "; latents in loops, branches and functions: h, z" ("" when none). */
static const char *dr_nested_names(const IrProgram *prog, int noutputs, const IrOutput *outputs) {
  if (!prog) return "";
  const IrAnalysis *a = ir_analyze(prog);
  const char *s = "";
  for (int i = 0; i < a->nlatents; i++) {
    const char *n = a->latents[i].name;
    bool seen = strstr(s, gc_printf(" %s,", n)) != NULL;
    for (int j = 0; j < noutputs && !seen; j++) seen = !strcmp(outputs[j].name, n);
    if (!seen) s = gc_printf("%s %s,", s, n);
  }
  if (!*s) return "";
  return gc_printf("; latents in loops, branches and functions:%.*s", (int)strlen(s) - 1, s);
}

/* The outputs named in list ("a,b"), marked in mark[]; the names of nested
   latents (not outputs) into *nested when given; false for a bad name. */
static bool dr_mark_outputs(const char *opt, const char *list, const IrProgram *prog, int noutputs,
                            const IrOutput *outputs, bool *mark, const char ***nested, int *nnested,
                            Diag *d) {
  const char *p = list;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *name = gc_strndup(p, len);
    /* spaces around the names are typed after commas: "a, b" */
    while (*name == ' ') name++;
    size_t nl = strlen(name);
    while (nl && name[nl - 1] == ' ') nl--;
    name = gc_strndup(name, nl);
    int found = -1;
    for (int j = 0; j < noutputs && found < 0; j++)
      if (!strcmp(outputs[j].name, name)) found = j;
    if (found < 0 && *name && dr_is_nested_name(prog, name)) {
      if (nested) (*nested)[(*nnested)++] = name; /* room for every name of list */
    } else if (found < 0) {
      char *known = "";
      for (int j = 0; j < noutputs; j++) known = gc_printf("%s%s%s", known, j ? ", " : "", outputs[j].name);
      if (!*name)
        diag_error(d, DIAG_USAGE, (SrcPos){0}, "--%s: an empty name in '%s'", opt, list);
      else
        diag_error(d, DIAG_USAGE, (SrcPos){0}, "--%s: the model has no output '%s' (its outputs: %s%s)", opt,
                   name, noutputs ? known : "none", dr_nested_names(prog, noutputs, outputs));
      return false;
    }
    if (found >= 0) mark[found] = true;
    if (!p[len]) return true;
    p += len + 1;
  }
}

/* driver_select_outputs, with the names of nested latents in the list into
   *nested (a GC array, *nnested of them) when nested is given. */
static bool dr_select(const DriverOpts *o, const IrProgram *prog, int noutputs,
                      const IrOutput *outputs, bool **keep, const char ***nested, int *nnested,
                      Diag *d) {
  bool *k = gc_alloc_atomic(sizeof(bool) * (size_t)(noutputs + 1));
  *keep = k;
  if (o->include && o->exclude) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--include and --exclude cannot be used together: name the outputs to keep, or those to leave out");
    return false;
  }
  const char *list = o->include ? o->include : o->exclude;
  bool *mark = gc_alloc_atomic(sizeof(bool) * (size_t)(noutputs + 1));
  memset(mark, 0, sizeof(bool) * (size_t)(noutputs + 1));
  if (nested) *nested = gc_alloc(sizeof(char *) * (list ? strlen(list) + 1 : 1)), *nnested = 0;
  if (list && !dr_mark_outputs(o->include ? "include" : "exclude", list, prog, noutputs, outputs,
                               mark, nested, nnested, d))
    return false;
  for (int j = 0; j < noutputs; j++) k[j] = !list || (o->include ? mark[j] : !mark[j]);
  return true;
}

bool driver_select_outputs(const DriverOpts *o, const IrProgram *prog, int noutputs,
                           const IrOutput *outputs, bool **keep, Diag *d) {
  return dr_select(o, prog, noutputs, outputs, keep, NULL, NULL, d);
}

/* ---- progress ----------------------------------------------------------- */

/* EngineOpts.progress: an engine's own unit within a step. */
static void dr_engine_progress(void *ctx, int chain, long done, long total, const char *unit) {
  progress_unit(ctx, chain, done, total, unit);
}

/* ---- one kept draw ------------------------------------------------------ */

static bool dr_fail(Chain *ch, DiagCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool dr_fail(Chain *ch, DiagCode code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(&ch->d, code, (SrcPos){0}, fmt, ap);
  va_end(ap);
  ch->failed = true;
  return false;
}

/* Whether the nested latent at addr gets columns under --include / --exclude:
   a name selects the addresses whose base is that name ("h" selects h[2],
   h[3], ...; "x" or "f/x" selects f[2]/x). */
static bool dr_nested_kept(const Run *r, const char *addr) {
  if (!r->o->include && !r->o->exclude) return true;
  const char *base = choices_base(addr);
  const char *slash = strrchr(base, '/');
  bool named = false;
  for (int i = 0; i < r->nnested_sel && !named; i++)
    named = !strcmp(r->nested_sel[i], base) || (slash && !strcmp(r->nested_sel[i], slash + 1));
  return r->o->include ? named : !named;
}

static int dr_strcmp_p(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A nested latent's column that an output has too: a latent in a loop named
   as a top-level variable (h.2 of h[2] and of a vector h).  sorted: the
   outputs' nout_cols column names in strcmp order. */
static bool dr_nested_clash(Chain *ch, const char **sorted, int nout_cols, int from,
                            const char *addr) {
  for (int i = from; i < ch->cols.n; i++)
    if (bsearch(&ch->cols.names[i], sorted, (size_t)nout_cols, sizeof(char *), dr_strcmp_p))
      return dr_fail(ch, DIAG_RUNTIME,
                     "the latent at address '%s' and an output both have column '%s': rename "
                     "the latent declared in the loop, branch or function, or the other variable",
                     addr, ch->cols.names[i]);
  return true;
}

/* The columns of the latents no output holds, after the outputs: one block
   per address ("h[2]" -> h.2), in run order.  The structure is fixed, so
   every draw has the addresses of the first. */
static bool dr_nested_columns(Run *r, Chain *ch, const Draw *dr, int k) {
  bool first = k == 0;
  int nout_cols = ch->cols.n;
  char err[256];
  /* the outputs' column names, sorted for the clash test: a VAE's thousands
     of per-image latents against its thousands of output columns */
  const char **sorted = NULL;
  if (first) {
    sorted = gc_alloc(sizeof(char *) * (size_t)(nout_cols + 1));
    memcpy(sorted, ch->cols.names, sizeof(char *) * (size_t)nout_cols);
    qsort(sorted, (size_t)nout_cols, sizeof(char *), dr_strcmp_p);
    ch->nlat = dr->nlatents;
    ch->lat_addr = gc_alloc(sizeof(char *) * (size_t)(dr->nlatents + 1));
    for (int i = 0; i < dr->nlatents; i++) ch->lat_addr[i] = dr->latents[i].addr;
  }
  for (int i = 0; i < dr->nlatents || i < ch->nlat; i++) {
    const char *a = i < dr->nlatents ? dr->latents[i].addr : "(none)";
    if (i >= ch->nlat || strcmp(a, ch->lat_addr[i]))
      return dr_fail(ch, DIAG_RUNTIME,
                     "the latents changed between draws (chain %d, draw %d: latent %d is '%s', "
                     "at the first draw '%s')",
                     ch->id + 1, k + 1, i + 1, a, i < ch->nlat ? ch->lat_addr[i] : "(none)");
    if (!dr_nested_kept(r, a)) continue;
    int from = ch->cols.n;
    if (csv_columns(csv_address_name(a), dr->latents[i].v, &ch->cols, first, err, sizeof err) < 0)
      return dr_fail(ch, DIAG_RUNTIME, "%s", err);
    if (first && !dr_nested_clash(ch, sorted, nout_cols, from, a)) return false;
  }
  return true;
}

/* Columns of draw k into ch->cols: lp__, engine stats, outputs. */
static bool dr_columns(Run *r, Chain *ch, const Draw *dr, int k) {
  bool first = ch->names == NULL; /* the chain's first written draw fixes the columns */
  CsvCols *c = &ch->cols;
  c->n = 0;
  char err[256];
  Value lp = val_real(dr->lp);
  csv_columns("lp__", lp, c, first, err, sizeof err);
  for (int s = 0; s < r->eng->nstats; s++)
    csv_columns(r->eng->stat_names[s], val_real(dr->stats[s]), c, first, err, sizeof err);
  for (int j = 0; j < r->noutputs; j++) {
    const IrOutput *out = &r->outputs[j];
    if (dr_is_string(out->type) || !r->keep[j]) continue;
    Value v = dr->outputs ? dr->outputs[j] : val_none();
    if (v.k == V_NONE && !dr_is_scalar(out->type)) continue; /* never assigned container */
    int dims[CSV_MAX_DIMS];
    int nd = csv_shape(v, dims);
    if (nd == -1) continue;
    if (nd < -1)
      return dr_fail(ch, DIAG_RUNTIME, "output '%s' is a ragged array; CSV columns need a rectangular shape",
                     out->name);
    if (first) {
      ch->out_nd[j] = nd;
      memcpy(ch->out_dims[j], dims, sizeof(int) * (size_t)nd);
    } else if (nd != ch->out_nd[j] || memcmp(dims, ch->out_dims[j], sizeof(int) * (size_t)nd)) {
      long was = 1, now = 1;
      for (int q = 0; q < ch->out_nd[j]; q++) was *= ch->out_dims[j][q];
      for (int q = 0; q < nd; q++) now *= dims[q];
      return dr_fail(ch, DIAG_RUNTIME,
                     "output '%s' changed shape between draws (%ld element%s at the first draw of "
                     "chain %d, %ld at draw %d): a CSV file needs a fixed set of columns",
                     out->name, was, was == 1 ? "" : "s", ch->id + 1, now, k + 1);
    }
    if (csv_columns(out->name, v, c, first, err, sizeof err) < 0)
      return dr_fail(ch, DIAG_RUNTIME, "%s", err);
  }
  return r->nested_cols ? dr_nested_columns(r, ch, dr, k) : true;
}

/* Each line of text as a CSV comment "# line". */
static bool dr_write_comments(FILE *f, const char *text) {
  const char *p = text;
  while (*p) {
    size_t n = strcspn(p, "\n");
    if (fprintf(f, "# %.*s\n", (int)n, p) < 0) return false;
    p += n;
    if (*p) p++;
  }
  return fflush(f) == 0;
}

/* ---- memory ------------------------------------------------------------- */

static double dr_phys_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (double)pages * (double)size : INFINITY;
}

/* "25.6 GB" */
static const char *dr_bytes_text(double b) {
  if (b >= 1e9) return gc_printf("%.1f GB", b / 1e9);
  if (b >= 1e6) return gc_printf("%.1f MB", b / 1e6);
  return gc_printf("%.0f bytes", b);
}

/* The memory the run keeps for its draws, with ncols columns a draw: every
 * chain's draws (and log weights), and the summary's scratch (a sorted copy
 * and the ranks of one column over all chains).  A run that cannot fit in
 * physical memory is refused before it samples; `when` says which count of
 * columns this is ("at least" before the first draw). */
static bool dr_check_memory(const EngineVT *eng, const DriverOpts *o, long ncols, const char *when,
                            Diag *d) {
  const EngineOpts *e = &o->eng;
  double per_draw = (double)(ncols + (eng->weighted ? 1 : 0)) * 8.0;
  double draws = (double)e->chains * (double)e->draws;
  double need = draws * per_draw + draws * 16.0;
  double have = dr_phys_bytes();
  if (need <= have) return true;
  diag_error(d, DIAG_USAGE, (SrcPos){0},
             "the run would keep %s of draws (%d chain%s x %d draws x %s%ld columns x 8 bytes, and the "
             "summary's work space), more than the %s of physical memory: thin the draws (thin), "
             "ask for fewer draws or chains, or output fewer variables",
             dr_bytes_text(need), e->chains, e->chains == 1 ? "" : "s", e->draws, when, ncols,
             dr_bytes_text(have));
  return false;
}

/* Draw k of the chain's sampling iterations (warm: of its warmup, written
 * to the CSV only, under --save-warmup). */
static bool dr_record(Run *r, Chain *ch, const Draw *dr, int k, bool warm) {
  bool first = ch->names == NULL;
  if (!dr_columns(r, ch, dr, k)) return false;
  int nd = r->o->eng.draws;
  if (first) {
    /* the columns are known now: the exact check (by every chain, before it
       allocates, so no chain is left to run out of memory instead) */
    if (!dr_check_memory(r->eng, r->o, ch->cols.n, "", &ch->d)) {
      ch->failed = true;
      return false;
    }
    ch->ncols = ch->cols.n;
    ch->names = gc_alloc(sizeof(char *) * (size_t)(ch->ncols ? ch->ncols : 1));
    memcpy(ch->names, ch->cols.names, sizeof(char *) * (size_t)ch->ncols);
    ch->is_int = gc_alloc_atomic(sizeof(bool) * (size_t)(ch->ncols ? ch->ncols : 1));
    memcpy(ch->is_int, ch->cols.is_int, sizeof(bool) * (size_t)ch->ncols);
    ch->data = gc_alloc_atomic(sizeof(double) * (size_t)ch->ncols * (size_t)nd);
    if (r->eng->weighted) ch->lw = gc_alloc_atomic(sizeof(double) * (size_t)nd);
    if (ch->csv && !csv_write_header(ch->csv, ch->ncols, ch->names)) goto io;
  } else if (ch->cols.n != ch->ncols) {
    return dr_fail(ch, DIAG_INTERNAL, "draw %d of chain %d has %d columns, the first had %d",
                   k + 1, ch->id + 1, ch->cols.n, ch->ncols);
  }
  /* CmdStan's layout: the adaptation comment separates warmup and sampling rows */
  if (!warm && k == 0 && ch->csv && ch->adapt && !dr_write_comments(ch->csv, ch->adapt)) goto io;
  if (!warm) {
    for (int col = 0; col < ch->ncols; col++)
      ch->data[(size_t)col * (size_t)nd + (size_t)k] = ch->cols.vals[col];
    if (ch->lw) ch->lw[k] = dr->log_weight;
  }
  if (ch->csv && !csv_write_row(ch->csv, ch->ncols, ch->cols.vals, ch->is_int,
                                        r->o->eng.sig_figs)) goto io;
  if (ch->chf && !choices_write(ch->chf, r->noutputs, r->outputs, dr->outputs, dr->nlatents,
                                dr->latents, r->o->eng.sig_figs)) {
    char buf[128];
    return dr_fail(ch, DIAG_IO, "error writing '%s': %s", ch->chf_path,
                   dr_strerror(errno, buf, sizeof buf));
  }
  if (!warm && ch->clog)
    choices_log_draw(ch->clog, k, r->noutputs, r->outputs, dr->nlatents, dr->latents);
  return true;
io:;
  char buf[128];
  return dr_fail(ch, DIAG_IO, "error writing '%s': %s", ch->csv_path, dr_strerror(errno, buf, sizeof buf));
}

/* ---- one chain ---------------------------------------------------------- */

static bool dr_step(Run *r, Chain *ch, void *state, bool warmup, Draw *dr) {
  memset(dr, 0, sizeof *dr);
  if (r->eng->step(state, warmup, dr, &ch->d)) return true;
  if (!diag_failed(&ch->d))
    diag_error(&ch->d, DIAG_INTERNAL, (SrcPos){0}, "engine '%s' failed without a message",
               r->eng->name);
  ch->failed = true;
  return false;
}

/* The host asked the run to stop (ppl_interrupt). */
static bool dr_interrupted(Run *r, Chain *ch) {
  bool stop = r->o->interrupt && atomic_load(r->o->interrupt);
  /* ranks running a chain in step stop at the same iteration: if one was
     asked (a signal reaches the ranks at different times), all stop */
  if (r->nranks > 1 && !r->split) {
    /* a weighted engine's draws are a finished run's particles handed out,
       each far cheaper than a collective: ask every 1024th */
    if (r->eng->weighted && ch->asks++ % 1024) return false;
    mpi_allreduce_or(r->o->eng.comm, &stop);
  }
  if (!stop) return false;
  ch->interrupted = true;
  return true;
}

/* Stop before the next iteration: another chain failed, or the host asked.
   Ranks in step ask the others every iteration (one collective each). */
static bool dr_halt(Run *r, Chain *ch) {
  if (r->nranks > 1 && !r->split) {
    bool asked = dr_interrupted(r, ch);
    return asked || atomic_load(&r->stop);
  }
  return atomic_load(&r->stop) || dr_interrupted(r, ch);
}

/* --save-metric: out_1.csv's metric is out_1_metric.json (CmdStan's
   output_metric.json), so the chain can be repeated with --metric. */
static const char *dr_metric_path(const char *csv_path) {
  const char *slash = strrchr(csv_path, '/');
  const char *dot = strrchr(csv_path, '.');
  int stem = dot && (!slash || dot > slash + 1) && dot != csv_path ? (int)(dot - csv_path)
                                                                   : (int)strlen(csv_path);
  return gc_printf("%.*s_metric.json", stem, csv_path);
}

static bool dr_save_metric(Run *r, Chain *ch, void *state) {
  const char *path = dr_metric_path(ch->csv_path);
  const char *json = r->eng->metric_json(state);
  FILE *f = fopen(path, "w");
  bool ok = f && fputs(json, f) >= 0;
  if (f && fclose(f) != 0) ok = false;
  if (ok) return true;
  char buf[128];
  return dr_fail(ch, DIAG_IO, "cannot write '%s': %s", path, dr_strerror(errno, buf, sizeof buf));
}

static void dr_run_chain(Run *r, Chain *ch) {
  const EngineOpts *eo = &r->eo;
  if (dr_interrupted(r, ch)) return; /* not started: no engine to set up */
  void *state = r->eng->init(r->in, eo, ch->id, &ch->d);
  if (!state) {
    /* an engine that trains in init (advi) stops there when interrupted: the
       chain has no draws, as one never started */
    if (dr_interrupted(r, ch)) return;
    if (!diag_failed(&ch->d))
      diag_error(&ch->d, DIAG_INTERNAL, (SrcPos){0}, "engine '%s' could not start chain %d",
                 r->eng->name, ch->id + 1);
    ch->failed = true;
    atomic_store(&r->stop, 1);
    return;
  }
  Draw dr;
  double t0 = dr_now();
  bool ok = true;
  for (int w = 0; ok && w < r->warmup; w++) {
    if (dr_halt(r, ch)) ok = false;
    else ok = dr_step(r, ch, state, true, &dr);
    /* thinned as the sampling draws are, as CmdStan does */
    if (ok && eo->save_warmup && w % eo->thin == 0) ok = dr_record(r, ch, &dr, w / eo->thin, true);
    if (ok) progress_iter(r->prog, ch->id, true, w + 1);
  }
  double t1 = dr_now();
  if (ok && r->eng->adaptation_info) ch->adapt = r->eng->adaptation_info(state);
  if (ok && eo->save_metric && r->eng->metric_json) ok = dr_save_metric(r, ch, state);
  for (int it = 0; ok && it < r->iters; it++) {
    if (dr_halt(r, ch)) ok = false;
    else ok = dr_step(r, ch, state, false, &dr);
    /* CmdStan keeps iterations 0, thin, 2 thin, ... */
    if (ok && it % eo->thin == 0 && (ok = dr_record(r, ch, &dr, ch->kept, false))) ch->kept++;
    if (ok) progress_iter(r->prog, ch->id, false, it + 1);
  }
  progress_chain_end(r->prog, ch->id);
  double t2 = dr_now();
  ch->logz = NAN;
  /* an interrupted chain is whole up to its last draw: it is summarised */
  if (ch->interrupted && !ch->failed) ok = true;
  if (ok && r->eng->log_evidence && !r->eng->log_evidence(state, &ch->logz)) ch->logz = NAN;
  ch->logz_se = NAN;
  if (ok && r->eng->log_evidence_se && !r->eng->log_evidence_se(state, &ch->logz_se))
    ch->logz_se = NAN;
  if (ok && r->eng->chain_notes) ch->notes = r->eng->chain_notes(state);
  if (ok && r->eng->vi_report) ch->has_vi = r->eng->vi_report(state, &ch->vi);
  if (ok && r->eng->rejections)
    ch->rejecting = r->eng->rejections(state, &ch->transitions, &ch->reject_first,
                                       &ch->reject_latent);
  if (r->eng->backend) ch->backend = r->eng->backend(state); /* after the draws: all is compiled */
  if (r->eng->free) r->eng->free(state);
  ch->warm_s = t1 - t0, ch->samp_s = t2 - t1;
  if (ch->failed) atomic_store(&r->stop, 1);
  /* the engine's own evidence estimate, for a summary of the files (ppl summary) */
  bool evidence = r->eng->log_evidence && !isnan(ch->logz);
  if (ok && ch->csv && ((evidence && !csv_write_evidence(ch->csv, ch->logz, ch->logz_se)) ||
                        !csv_write_timing(ch->csv, ch->warm_s, ch->samp_s))) {
    char buf[128];
    dr_fail(ch, DIAG_IO, "error writing '%s': %s", ch->csv_path, dr_strerror(errno, buf, sizeof buf));
    atomic_store(&r->stop, 1);
  }
}

/* chains across ranks: chain c is rank c mod R's */
static bool dr_mine(const Run *r, int c) { return !r->split || c % r->nranks == r->rank; }

static bool dr_take_chain(Run *r, int *c) {
  pthread_mutex_lock(&r->mu);
  while (r->next_chain < r->o->eng.chains && !dr_mine(r, r->next_chain)) r->next_chain++;
  *c = r->next_chain < r->o->eng.chains ? r->next_chain++ : -1;
  pthread_mutex_unlock(&r->mu);
  return *c >= 0;
}

/* A chain under an out-of-memory guard.  After a failed allocation the
 * engine's state is abandoned (its GC memory is garbage; what it holds
 * outside the GC heap leaks) and the chain fails with DIAG_NOMEM. */
static void dr_run_chain_guarded(Run *r, Chain *ch) {
  GcGuard g;
  if (gc_guard_enter(&g, setjmp(g.jb))) {
    dr_run_chain(r, ch);
    gc_guard_leave(&g);
    return;
  }
  diag_init(&ch->d);
  dr_fail(ch, DIAG_NOMEM, "out of memory (allocating %zu bytes)", g.bytes);
  atomic_store(&r->stop, 1);
}

static void *dr_worker(void *arg) {
  Run *r = arg;
  gc_thread_enter();
  int c;
  while (dr_take_chain(r, &c)) dr_run_chain_guarded(r, &r->chains[c]);
  gc_thread_leave();
  return NULL;
}

/* ---- the run ------------------------------------------------------------ */

static bool dr_check_opts(const EngineVT *eng, const DriverOpts *o, Diag *d) {
  const EngineOpts *e = &o->eng;
  const char *bad = NULL;
  if (!eng || !eng->init || !eng->step) bad = "no engine";
  else if (eng->nstats < 0 || eng->nstats > ENGINE_MAX_STATS) bad = "engine has a bad number of stat columns";
  else if (e->chains < 1) bad = "chains must be at least 1";
  else if (e->draws < 1) bad = "draws must be at least 1";
  else if (e->warmup < 0) bad = "warmup must not be negative";
  else if (e->thin < 1) bad = "thin must be at least 1";
  else if ((long long)e->draws * e->thin > 2147483647LL) bad = "draws * thin is too large";
  if (bad) diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s", bad);
  return !bad;
}

/* Close a chain's choices file; false on a write error. */
static bool dr_close_choices(Chain *ch) {
  bool ok = !ch->chf || fclose(ch->chf) == 0;
  ch->chf = NULL;
  return ok;
}

/* Close (or, for stdout, flush) a chain's CSV; false on a write error. */
static bool dr_close_csv(Chain *ch) {
  if (!ch->csv) return true;
  bool ok = ch->csv_shared ? fflush(ch->csv) == 0 && !ferror(ch->csv) : fclose(ch->csv) == 0;
  ch->csv = NULL;
  return ok;
}

static void dr_close_files(Run *r) {
  for (int c = 0; c < r->o->eng.chains; c++) dr_close_csv(&r->chains[c]), dr_close_choices(&r->chains[c]);
}

/* ---- outputs -------------------------------------------------------------- */

/* Output path is the existing file `input` (same device and inode). */
static bool dr_same_file(const char *path, const char *input) {
  struct stat a, b;
  return input && stat(path, &a) == 0 && stat(input, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

/* An output must not be one of the run's inputs: writing it would destroy
 * the model or its data. */
static bool dr_not_an_input(const DriverOpts *o, const char *path, const char *what, Diag *d) {
  const char *in = dr_same_file(path, o->model_file) ? o->model_file
                   : dr_same_file(path, o->data_file) ? o->data_file
                                                      : NULL;
  if (!in) return true;
  diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s '%s' is the run's %s file '%s': refusing to overwrite it",
             what, path, in == o->model_file ? "model" : "data", in);
  return false;
}

/* Whether path can be written, without creating or truncating it: the file
 * if it exists, else its directory. */
static bool dr_writable(const char *path, int *err) {
  struct stat st;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return *err = EISDIR, false;
    if (access(path, W_OK) != 0) return *err = errno, false;
    return true;
  }
  if (errno != ENOENT) return *err = errno, false;
  const char *slash = strrchr(path, '/');
  const char *dir = !slash ? "." : slash == path ? "/" : gc_strndup(path, (size_t)(slash - path));
  if (access(dir, W_OK | X_OK) != 0) return *err = errno, false;
  return true;
}

bool driver_check_output_file(const DriverOpts *o, const char *path, const char *what, Diag *d) {
  if (!dr_not_an_input(o, path, what, d)) return false;
  int e = 0;
  if (dr_writable(path, &e)) return true;
  char buf[128];
  diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write %s '%s': %s", what, path,
             dr_strerror(e, buf, sizeof buf));
  return false;
}

/* The summary JSON is written after sampling: check it before. */
static bool dr_check_summary_path(const DriverOpts *o, Diag *d) {
  if (!o->summary_json) return true;
  if (!dr_not_an_input(o, o->summary_json, "summary", d)) return false;
  int e = 0;
  if (dr_writable(o->summary_json, &e)) return true;
  char buf[128];
  diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write summary '%s': %s", o->summary_json,
             dr_strerror(e, buf, sizeof buf));
  return false;
}

typedef enum { DR_FILE, DR_STDOUT, DR_FIFO, DR_DEVICE } DrOutKind;

/* Chain c's CSV path: "-" is stdout, a character device or FIFO is the path
 * itself, anything else NAME_c.csv when there are several chains. */
static const char *dr_csv_path(const DriverOpts *o, int c, DrOutKind *kind) {
  struct stat st;
  *kind = DR_FILE;
  if (!strcmp(o->output_csv, "-")) return *kind = DR_STDOUT, "(stdout)";
  if (stat(o->output_csv, &st) == 0 && S_ISCHR(st.st_mode)) return *kind = DR_DEVICE, o->output_csv;
  if (stat(o->output_csv, &st) == 0 && S_ISFIFO(st.st_mode)) return *kind = DR_FIFO, o->output_csv;
  return csv_chain_path(o->output_csv, c, o->eng.chains);
}

bool driver_check_outputs(const EngineVT *eng, const DriverOpts *o, const IrProgram *prog,
                          int noutputs, const IrOutput *outputs, Diag *d) {
  /* a lower bound of the columns (lp__, the engine's, one a scalar output)
     refuses the hopeless runs before any work; the first draw gives the rest */
  bool *keep;
  if (!driver_select_outputs(o, prog, noutputs, outputs, &keep, d)) return false;
  long mincols = 1 + eng->nstats;
  for (int j = 0; j < noutputs; j++) mincols += keep[j] && dr_is_scalar(outputs[j].type);
  if (!dr_check_memory(eng, o, mincols, "at least ", d)) return false;
  if (!dr_check_summary_path(o, d)) return false;
  if (o->eng.save_metric && !eng->metric_json) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--save-metric applies to engines that adapt a metric (nuts, hmc), not to '%s'",
               eng->name);
    return false;
  }
  if (o->eng.save_metric && (!o->output_csv || !strcmp(o->output_csv, "-"))) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--save-metric writes each chain's metric beside its CSV: give --output FILE.csv");
    return false;
  }
  if (o->eng.choices && (!o->output_csv || !strcmp(o->output_csv, "-"))) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--choices writes each chain's choices beside its CSV: give --output FILE.csv");
    return false;
  }
  if (!o->output_csv) return true;
  int nch = o->eng.chains;
  for (int c = 0; c < nch; c++) {
    DrOutKind kind;
    const char *path = dr_csv_path(o, c, &kind);
    if ((kind == DR_STDOUT || kind == DR_FIFO) && nch > 1) {
      diag_error(d, DIAG_USAGE, (SrcPos){0},
                 "output '%s' is %s, which takes the draws of one chain; the run has %d chains: "
                 "give a file name (one file a chain) or run one chain",
                 o->output_csv, kind == DR_STDOUT ? "standard output" : "a FIFO", nch);
      return false;
    }
    if (kind == DR_STDOUT) continue;
    if (o->eng.choices && kind != DR_FILE) {
      diag_error(d, DIAG_USAGE, (SrcPos){0},
                 "--choices writes each chain's choices beside its CSV; '%s' is not a "
                 "regular file: give --output FILE.csv", o->output_csv);
      return false;
    }
    if (o->eng.save_metric && kind != DR_FILE) {
      diag_error(d, DIAG_USAGE, (SrcPos){0},
                 "--save-metric writes each chain's metric beside its CSV; '%s' is not a "
                 "regular file: give --output FILE.csv", o->output_csv);
      return false;
    }
    if (!dr_not_an_input(o, path, "output", d)) return false;
    int e = 0;
    char buf[128];
    if (kind == DR_FILE && !dr_writable(path, &e)) {
      diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write '%s': %s", path, dr_strerror(e, buf, sizeof buf));
      return false;
    }
  }
  return true;
}

static bool dr_open_csv(Run *r, Chain *ch, int c, Diag *d) {
  DrOutKind kind;
  ch->csv_path = dr_csv_path(r->o, c, &kind);
  ch->csv_shared = kind == DR_STDOUT;
  ch->csv = kind == DR_STDOUT ? stdout : fopen(ch->csv_path, "w");
  if (ch->csv) return true;
  char buf[128];
  diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write '%s': %s", ch->csv_path,
             dr_strerror(errno, buf, sizeof buf));
  return false;
}

/* The choices file beside a chain's CSV (a regular file: dr_choices_rule). */
static bool dr_open_choices(Chain *ch, Diag *d) {
  ch->chf_path = choices_path(ch->csv_path);
  ch->chf = fopen(ch->chf_path, "w");
  if (ch->chf) return true;
  char buf[128];
  diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write '%s': %s", ch->chf_path,
             dr_strerror(errno, buf, sizeof buf));
  return false;
}

static bool dr_open_files(Run *r, Diag *d) {
  const DriverOpts *o = r->o;
  if (!o->output_csv) return true;
  int nskip = 0;
  const char **skipped = gc_alloc(sizeof(char *) * (size_t)(r->noutputs + 1));
  for (int j = 0; j < r->noutputs; j++)
    if (dr_is_string(r->outputs[j].type)) skipped[nskip++] = r->outputs[j].name;
  for (int c = 0; c < o->eng.chains; c++) {
    Chain *ch = &r->chains[c];
    char buf[128];
    if (!dr_open_csv(r, ch, c, d) || (r->choices && !dr_open_choices(ch, d))) {
      dr_close_files(r);
      return false;
    }
    CsvConfig cfg = {
        .model_name = dr_short_name(o->model_name ? o->model_name : o->model_file),
        .model_file = o->model_file,
        .engine = r->eng->name,
        .engine_reason = o->engine_reason,
        .nested_note = !r->nested_note ? NULL
                       : ch->chf ? gc_printf("%s; every draw's choices are in %s", r->nested_note,
                                             ch->chf_path)
                                 : r->nested_note,
        .num_samples = r->iters,
        .num_warmup = r->warmup,
        .save_warmup = o->eng.save_warmup && r->warmup > 0,
        .thin = o->eng.thin,
        .num_chains = o->eng.chains,
        .id = c + 1,
        .seed = o->eng.seed,
        .data_file = o->data_file,
        .output_file = ch->csv_path,
        .nskipped = nskip,
        .skipped = skipped,
    };
    if (r->eng->csv_config) r->eng->csv_config(&o->eng, &cfg);
    if (!csv_write_config(ch->csv, &cfg)) {
      diag_error(d, DIAG_IO, (SrcPos){0}, "error writing '%s': %s", ch->csv_path,
                 dr_strerror(errno, buf, sizeof buf));
      dr_close_files(r);
      return false;
    }
  }
  return true;
}

static void dr_run_all(Run *r) {
  int nch = 0;
  for (int c = 0; c < r->o->eng.chains; c++) nch += dr_mine(r, c);
  if (nch == 0) return;
  /* default: one thread per chain up to the number of processors */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nt = r->o->threads > 0 ? r->o->threads : (ncpu > 0 ? (int)ncpu : 1);
  if (nt > nch) nt = nch;
  /* ranks that run each chain together exchange in step: one chain at a time */
  if (r->nranks > 1 && !r->split) nt = 1;
  pthread_t *tid = gc_alloc_atomic(sizeof(pthread_t) * (size_t)nt);
  int started = 0;
  for (int t = 0; t < nt && nt > 1; t++)
    if (pthread_create(&tid[t], NULL, dr_worker, r) == 0) started++;
  /* The calling thread works too: with one thread (or if no thread could be
     created) it runs every chain itself. */
  int c;
  if (started == 0)
    while (dr_take_chain(r, &c)) dr_run_chain_guarded(r, &r->chains[c]);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

/* The error to report: the lowest-numbered chain that really failed. */
static bool dr_first_error(Run *r, Diag *d) {
  for (int c = 0; c < r->o->eng.chains; c++)
    if (r->chains[c].failed) {
      *d = r->chains[c].d;
      return true;
    }
  return false;
}

static bool dr_same_columns(Run *r, Diag *d) {
  Chain *a = &r->chains[0];
  for (int c = 1; c < r->m; c++) {
    Chain *b = &r->chains[c];
    int n = a->ncols < b->ncols ? a->ncols : b->ncols;
    for (int i = 0; i <= n; i++) {
      if (i < n && !strcmp(a->names[i], b->names[i])) continue;
      if (i == n && a->ncols == b->ncols) break;
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "chain %d's outputs have other shapes than chain 1's (column %d: '%s' vs '%s'): "
                 "the chains' CSV files and summary need the same columns",
                 b->id + 1, i + 1, i < b->ncols ? b->names[i] : "(none)", i < a->ncols ? a->names[i] : "(none)");
      return false;
    }
  }
  return true;
}

/* After an interrupt: the result keeps the chains that kept draws, each cut
 * to the fewest any of them kept, its columns moved together (data[c] is laid
 * out column by column with a stride of the draws asked for).  False when no
 * chain kept a draw. */
static bool dr_cut_interrupted(Run *r) {
  int m = 0, n = r->o->eng.draws;
  for (int c = 0; c < r->o->eng.chains; c++)
    if (r->chains[c].kept > 0) {
      if (r->chains[c].kept < n) n = r->chains[c].kept;
      r->chains[m++] = r->chains[c];
    }
  if (m == 0) return false;
  int nd = r->o->eng.draws;
  for (int c = 0; c < m && n < nd; c++)
    for (int col = 1; col < r->chains[c].ncols; col++)
      memmove(r->chains[c].data + (size_t)col * (size_t)n, r->chains[c].data + (size_t)col * (size_t)nd,
              sizeof(double) * (size_t)n);
  r->m = m;
  r->n = n;
  return true;
}

/* The columns' diagnostics are independent of each other, and with many
 * draws (sorts, FFTs) they are the end of a run that no chain shares: they
 * are spread over threads, each taking the next column. */
typedef struct SumJob {
  RunResult *rr;
  const double *scores; /* diag_rank_scores of all the draws of a column */
  atomic_int next;
} SumJob;

static void dr_summarise_cols(SumJob *j) {
  RunResult *rr = j->rr;
  int m = rr->nchains, n = rr->ndraws;
  const double **x = gc_alloc(sizeof(double *) * (size_t)m);
  for (int col; (col = atomic_fetch_add(&j->next, 1)) < rr->ncols;) {
    for (int c = 0; c < m; c++) x[c] = rr->data[c] + (size_t)col * (size_t)n;
    size_t len = strlen(rr->names[col]);
    bool stat = len > 2 && !strcmp(rr->names[col] + len - 2, "__") && strcmp(rr->names[col], "lp__");
    if (rr->weighted && !stat)
      diag_summarise_weighted(m, n, x, (const double *const *)rr->lw, &rr->stats[col]);
    else if (summary_is_tuning(rr->names[col])) /* its ESS and R-hat would be shown as "-" */
      diag_summarise_moments(m, n, x, &rr->stats[col]);
    else
      diag_summarise_scores(m, n, x, j->scores, &rr->stats[col]);
  }
}

static void *dr_summarise_worker(void *arg) {
  gc_thread_enter();
  dr_summarise_cols(arg);
  gc_thread_leave();
  return NULL;
}

/* The statistics of every column and the evidence.  Sampler columns
 * describe the sampler, not the posterior: they are summarised unweighted. */
static void dr_summarise(const DriverDraws *dd, RunResult *rr) {
  int m = rr->nchains, n = rr->ndraws;
  SumJob job = {.rr = rr, .scores = m > 0 && n > 0 ? diag_rank_scores((size_t)m * (size_t)n) : NULL};
  atomic_init(&job.next, 0);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nt = dd->threads > 0 ? dd->threads : (ncpu > 0 ? (int)ncpu : 1);
  /* a thread is worth it for a few columns of many draws, not for a few */
  long work = (long)rr->ncols * m * n;
  if (nt > rr->ncols / 4) nt = rr->ncols / 4;
  if (work < 200000) nt = 1;
  pthread_t tid[64];
  int started = 0;
  for (int t = 1; t < nt && t < 64; t++)
    if (pthread_create(&tid[started], NULL, dr_summarise_worker, &job) == 0) started++;
  dr_summarise_cols(&job); /* the calling thread takes columns too */
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
  rr->logz = rr->logz_se = rr->weights_ess = NAN;
  double *lz = gc_alloc_atomic(sizeof(double) * (size_t)m);
  double *lse = gc_alloc_atomic(sizeof(double) * (size_t)m);
  if (dd->chain_logz) {
    /* independent estimates of Z from the chains: averaged on the natural
       scale; the SE is the larger of their spread's and their own */
    for (int c = 0; c < m; c++) lz[c] = dd->chain_logz[c];
    diag_evidence_combine(m, lz, dd->chain_logz_se, &rr->logz, &rr->logz_se);
  } else if (rr->weighted) {
    diag_log_evidence(m, n, (const double *const *)rr->lw, &rr->logz, &rr->logz_se);
    /* the pooled delta-method SE cannot see chains that disagree: each chain
       is an estimate of its own, and their spread counts too */
    for (int c = 0; c < m; c++)
      diag_log_evidence(1, n, (const double *const *)&rr->lw[c], &lz[c], &lse[c]);
    double est, se;
    diag_evidence_combine(m, lz, lse, &est, &se);
    if (se > rr->logz_se) rr->logz_se = se;
  }
  rr->pareto_k = NAN;
  if (rr->weighted) {
    rr->weights_ess = diag_kish_ess(m, n, (const double *const *)rr->lw);
    /* the chains are independent importance samples: one tail for all */
    double *all = gc_alloc_atomic(sizeof(double) * (size_t)m * (size_t)n);
    for (int c = 0; c < m; c++) memcpy(all + (size_t)c * (size_t)n, rr->lw[c], sizeof(double) * (size_t)n);
    rr->pareto_k = psis_k(m * n, all);
  }
  if (dd->chain_logz || rr->weighted) rr->chain_logz = lz;
}

/* A variational run's diagnostics from its chains' fits: k-hat of all the
 * draws' weights p / q pooled (one tail for the run, as for weighted
 * engines), the log evidence of each chain's weights combined as
 * independent estimates (each chain fitted its own q). */
static void dr_vi(const DriverDraws *dd, RunResult *rr) {
  int m = dd->m;
  SummaryVi *vi = gc_alloc(sizeof *vi);
  vi->family = dd->vi[0].family;
  vi->loaded = dd->vi[0].loaded;
  vi->nchains = m;
  vi->chains = dd->vi;
  vi->converged = true;
  long total = 0;
  for (int c = 0; c < m; c++) {
    const ViReport *r = &dd->vi[c];
    vi->elbo += r->elbo / m;
    if (r->iterations > vi->iterations) vi->iterations = r->iterations;
    vi->converged &= r->converged;
    vi->resampled |= r->resampled;
    total += r->n;
  }
  double *all = gc_alloc_atomic(sizeof(double) * (size_t)(total ? total : 1));
  double *lz = gc_alloc_atomic(sizeof(double) * (size_t)m);
  double *lse = gc_alloc_atomic(sizeof(double) * (size_t)m);
  long k = 0;
  for (int c = 0; c < m; c++) {
    const ViReport *r = &dd->vi[c];
    memcpy(all + k, r->lw, sizeof(double) * (size_t)r->n);
    k += r->n;
    if (r->n > 0) diag_log_evidence(1, r->n, &r->lw, &lz[c], &lse[c]);
  }
  /* without weights (resampled draws read back from files) nothing is known */
  bool weights = true;
  for (int c = 0; c < m; c++) weights &= dd->vi[c].n > 0;
  vi->khat = vi->log_evidence = vi->log_evidence_se = NAN;
  if (weights && total <= (long)INT32_MAX) vi->khat = psis_k((int)total, all);
  if (weights) diag_evidence_combine(m, lz, lse, &vi->log_evidence, &vi->log_evidence_se);
  rr->vi = vi;
}

static void dr_warnings(const DriverDraws *dd, RunResult *rr) {
  WarnInput in = {
      .m = rr->nchains, .n = rr->ndraws, .ncols = rr->ncols,
      .names = rr->names, .labels = rr->labels,
      .data = (const double *const *)rr->data, .stats = rr->stats,
      .weighted = rr->weighted, .lw = (const double *const *)rr->lw,
      .random_walk = dd->random_walk,
      .adapt_delta = dd->adapt_delta,
      .max_depth = dd->max_depth,
      .chain_logz = rr->chain_logz,
      .pareto_k = rr->pareto_k,
      .rejecting = dd->rejecting, .transitions = dd->transitions,
      .reject_first = dd->reject_first, .reject_latent = dd->reject_latent,
      .vi_family = rr->vi ? rr->vi->family : NULL,
      .vi_khat = rr->vi ? rr->vi->khat : NAN,
  };
  for (int c = 0; rr->vi && c < rr->vi->nchains; c++) in.vi_unconverged += !rr->vi->chains[c].converged;
  rr->warnings = warn_collect(&in, &rr->nwarnings);
  rr->warnings_text = summary_warnings_text(rr->nwarnings, rr->warnings);
}

RunResult *driver_result(const DriverDraws *dd) {
  RunResult *rr = gc_alloc(sizeof *rr);
  int m = dd->m;
  rr->engine = dd->engine;
  rr->engine_reason = dd->engine_reason;
  rr->backend = dd->backend;
  rr->nchains = m;
  rr->ndraws = dd->n;
  rr->interrupted = dd->planned_draws > 0;
  rr->ncols = dd->ncols;
  rr->names = dd->names;
  rr->labels = gc_alloc(sizeof(char *) * (size_t)(rr->ncols ? rr->ncols : 1));
  for (int i = 0; i < rr->ncols; i++) rr->labels[i] = csv_label(rr->names[i]);
  rr->data = dd->data;
  rr->lw = dd->lw;
  rr->weighted = dd->lw != NULL;
  rr->warm_s = gc_alloc_atomic(sizeof(double) * (size_t)m);
  rr->samp_s = gc_alloc_atomic(sizeof(double) * (size_t)m);
  for (int c = 0; c < m; c++) {
    rr->warm_s[c] = dd->warm_s ? dd->warm_s[c] : NAN;
    rr->samp_s[c] = dd->samp_s ? dd->samp_s[c] : NAN;
  }
  rr->stats = gc_alloc_atomic(sizeof(SummaryStats) * (size_t)(rr->ncols ? rr->ncols : 1));
  dr_summarise(dd, rr);
  if (dd->vi && m > 0) dr_vi(dd, rr);
  dr_warnings(dd, rr);
  rr->sr = (SummaryRun){
      .model_name = dd->model_name,
      .engine = rr->engine,
      .engine_reason = rr->engine_reason,
      .backend = rr->backend,
      .chains = rr->nchains,
      .draws = rr->ndraws,
      .warmup = dd->warmup,
      .thin = dd->thin,
      .weighted = rr->weighted,
      .log_evidence = rr->logz,
      .log_evidence_se = rr->logz_se,
      .weights_ess = rr->weights_ess,
      .pareto_k = rr->pareto_k,
      .nwarnings = rr->nwarnings,
      .warnings = rr->warnings,
      .planned_draws = dd->planned_draws,
      .planned_chains = dd->planned_chains,
      .vi = rr->vi,
      .nnotes = dd->notes ? m : 0,
      .notes = (const char *const *)dd->notes,
      .note_chains = dd->chain_ids,
  };
  rr->summary_text = summary_table(&rr->sr, rr->ncols, rr->labels, rr->stats);
  /* the engines' own remarks (divergences, tree depth ...), chain by chain */
  for (int c = 0; c < m && dd->notes; c++)
    if (dd->notes[c] && *dd->notes[c])
      rr->summary_text = gc_printf("%s\nchain %d: %s", rr->summary_text, dd->chain_ids ? dd->chain_ids[c] : c + 1,
                                   dd->notes[c]);
  return rr;
}

bool rr_write_summary_json(const RunResult *rr, const char *path, Diag *d) {
  return summary_write_json(path, &rr->sr, rr->ncols, (const char *const *)rr->labels, rr->stats, d);
}

/* The run's chains as driver_result takes them. */
static RunResult *dr_result(Run *r) {
  const DriverOpts *o = r->o;
  int m = r->m;
  bool interrupted = r->m < o->eng.chains || r->n < o->eng.draws;
  DriverDraws dd = {
      .engine = r->eng->name,
      .engine_reason = o->engine_reason,
      .backend = r->chains[0].backend,
      .model_name = dr_short_name(o->model_name ? o->model_name : o->model_file),
      .m = m, .n = r->n, .ncols = r->chains[0].ncols,
      .warmup = r->warmup, .thin = o->eng.thin,
      .names = r->chains[0].names,
      .data = gc_alloc(sizeof(double *) * (size_t)m),
      .lw = r->eng->weighted ? gc_alloc(sizeof(double *) * (size_t)m) : NULL,
      .warm_s = gc_alloc_atomic(sizeof(double) * (size_t)m),
      .samp_s = gc_alloc_atomic(sizeof(double) * (size_t)m),
      .notes = gc_alloc(sizeof(char *) * (size_t)m),
      .chain_ids = gc_alloc_atomic(sizeof(int) * (size_t)m),
      .random_walk = r->eng->random_walk,
      .adapt_delta = engine_opt_real(&o->eng, "adapt-delta"),
      .max_depth = (int)engine_opt_int(&o->eng, "max-depth"),
      .planned_draws = interrupted ? o->eng.draws : 0,
      .planned_chains = interrupted ? o->eng.chains : 0,
      .threads = o->threads,
  };
  ViReport *vi = r->eng->vi_report ? gc_alloc(sizeof(ViReport) * (size_t)m) : NULL;
  double *lz = NULL, *lse = NULL;
  if (r->eng->log_evidence) {
    lz = gc_alloc_atomic(sizeof(double) * (size_t)m);
    lse = r->eng->log_evidence_se ? gc_alloc_atomic(sizeof(double) * (size_t)m) : NULL;
  }
  for (int c = 0; c < m; c++) {
    Chain *ch = &r->chains[c];
    dd.data[c] = ch->data;
    if (dd.lw) dd.lw[c] = ch->lw;
    dd.warm_s[c] = ch->warm_s, dd.samp_s[c] = ch->samp_s;
    dd.notes[c] = ch->notes;
    dd.chain_ids[c] = ch->id + 1;
    if (lz) lz[c] = ch->logz;
    if (lse) lse[c] = ch->logz_se;
    if (vi && !ch->has_vi) vi = NULL; /* an interrupted chain may have none */
    if (vi) vi[c] = ch->vi;
    dd.rejecting += ch->rejecting;
    dd.transitions += ch->transitions;
    if (!dd.reject_first) dd.reject_first = ch->reject_first, dd.reject_latent = ch->reject_latent;
  }
  dd.chain_logz = lz, dd.chain_logz_se = lse;
  dd.vi = vi;
  return driver_result(&dd);
}

/* The summary's lines on the choices (choices_summary). */
static const char *dr_choices_summary(Run *r) {
  ChoiceLog **logs = gc_alloc(sizeof(ChoiceLog *) * (size_t)r->m);
  const double **lw = r->eng->weighted ? gc_alloc(sizeof(double *) * (size_t)r->m) : NULL;
  for (int c = 0; c < r->m; c++) {
    logs[c] = r->chains[c].clog;
    if (lw) lw[c] = r->chains[c].lw;
  }
  const char *where = NULL;
  if (r->choices)
    where = r->o->eng.chains == 1 ? r->chains[0].chf_path
                                  : gc_printf("%s ... %s", choices_path(csv_chain_path(r->o->output_csv, 0, r->o->eng.chains)),
                                              choices_path(csv_chain_path(r->o->output_csv, r->o->eng.chains - 1, r->o->eng.chains)));
  return choices_summary(r->m, r->n, logs, lw, where, r->choices_table);
}

/* Latents in loops, branches and functions are written under their
   addresses when the program's structure is fixed, or the run makes one
   draw: then every draw has the same addresses and the columns are known at
   the first.  Otherwise the set changes from run to run and a CSV file has
   one header: they have no column, the comment block says so, and every
   draw's choices go to the choices file instead (and the summary's table of
   them). */
static void dr_nested_rule(Run *r) {
  r->nested_cols = true;
  if (!r->in) return; /* no program (a host's engine): what it reports */
  /* one draw in all (`ppl exec`) has one set of addresses whatever the program */
  if (r->o->eng.chains == 1 && r->o->eng.draws == 1) return;
  const IrAnalysis *a = ir_analyze(interp_program(r->in));
  r->nested_cols = a->fixed_structure;
  if (a->fixed_structure) return;
  for (int i = 0; i < a->nlatents; i++) {
    bool output = false;
    for (int j = 0; j < r->noutputs && !output; j++)
      output = r->outputs[j].kind == OUT_LATENT && !strcmp(r->outputs[j].name, a->latents[i].name) &&
               !a->latents[i].in_loop && !a->latents[i].in_function;
    if (output) continue;
    r->nested_note = gc_printf("the latents' addresses change between runs (%s)",
                               a->dynamic_reason ? a->dynamic_reason : "dynamic structure");
    r->choices_table = true;
    return;
  }
}

/* Each chain writes its choices file when asked (--choices) and, for a
   program whose nested latents have no columns, whenever its CSV is a
   regular file. */
static void dr_choices_rule(Run *r) {
  DrOutKind kind = DR_STDOUT;
  if (r->o->output_csv) dr_csv_path(r->o, 0, &kind);
  r->choices = kind == DR_FILE && (r->o->eng.choices || r->choices_table);
}

/* ---- chains across MPI ranks ---------------------------------------------
 *
 * Chain c runs on rank c mod R with its usual seed (seed, c), so its draws
 * are the single-process run's.  Afterwards each chain's result goes from
 * its rank to every other one, in chain order, and rank 0 appends the rows
 * a remote chain wrote (into memory) to the CSV file it opened with the
 * header: the files are the single-process run's but for the timings. */

static void dr_pack_chain(MpiPack *b, Chain *ch, int nd) {
  mpi_put_int(b, ch->failed);
  mpi_put_int(b, ch->d.code);
  mpi_put_str(b, ch->d.msg);
  mpi_put_int(b, ch->interrupted);
  mpi_put_int(b, ch->kept);
  mpi_put_int(b, ch->ncols);
  for (int k = 0; k < ch->ncols; k++) mpi_put_str(b, ch->names[k]);
  if (ch->ncols) mpi_put(b, ch->is_int, sizeof(bool) * (size_t)ch->ncols);
  mpi_put_int(b, ch->data != NULL);
  if (ch->data) mpi_put(b, ch->data, sizeof(double) * (size_t)ch->ncols * (size_t)nd);
  mpi_put_int(b, ch->lw != NULL);
  if (ch->lw) mpi_put(b, ch->lw, sizeof(double) * (size_t)nd);
  mpi_put_real(b, ch->warm_s), mpi_put_real(b, ch->samp_s);
  mpi_put_real(b, ch->logz), mpi_put_real(b, ch->logz_se);
  mpi_put_str(b, ch->adapt), mpi_put_str(b, ch->notes), mpi_put_str(b, ch->backend);
  mpi_put_int(b, ch->rejecting), mpi_put_int(b, ch->transitions);
  mpi_put_str(b, ch->reject_first), mpi_put_str(b, ch->reject_latent);
  mpi_put_int(b, (int64_t)ch->mem_n);
  if (ch->mem_n) mpi_put(b, ch->mem, ch->mem_n);
}

static bool dr_unpack_chain(MpiPack *b, Chain *ch, int nd) {
  ch->failed = mpi_get_int(b);
  ch->d.code = (DiagCode)mpi_get_int(b);
  const char *msg = mpi_get_str(b);
  snprintf(ch->d.msg, sizeof ch->d.msg, "%s", msg ? msg : "");
  ch->interrupted = mpi_get_int(b);
  ch->kept = (int)mpi_get_int(b);
  ch->ncols = (int)mpi_get_int(b);
  if (b->bad || ch->ncols < 0) return false;
  ch->names = gc_alloc(sizeof(char *) * (size_t)(ch->ncols + 1));
  for (int k = 0; k < ch->ncols; k++) ch->names[k] = mpi_get_str(b);
  ch->is_int = gc_alloc_atomic(sizeof(bool) * (size_t)(ch->ncols + 1));
  mpi_get(b, ch->is_int, sizeof(bool) * (size_t)ch->ncols);
  if (mpi_get_int(b)) {
    ch->data = gc_alloc_atomic(sizeof(double) * (size_t)ch->ncols * (size_t)nd + 1);
    mpi_get(b, ch->data, sizeof(double) * (size_t)ch->ncols * (size_t)nd);
  }
  if (mpi_get_int(b)) {
    ch->lw = gc_alloc_atomic(sizeof(double) * (size_t)nd + 1);
    mpi_get(b, ch->lw, sizeof(double) * (size_t)nd);
  }
  ch->warm_s = mpi_get_real(b), ch->samp_s = mpi_get_real(b);
  ch->logz = mpi_get_real(b), ch->logz_se = mpi_get_real(b);
  ch->adapt = mpi_get_str(b), ch->notes = mpi_get_str(b), ch->backend = mpi_get_str(b);
  ch->rejecting = mpi_get_int(b), ch->transitions = mpi_get_int(b);
  ch->reject_first = mpi_get_str(b), ch->reject_latent = mpi_get_str(b);
  int64_t n = mpi_get_int(b);
  if (b->bad || n < 0 || (uint64_t)n > b->n - b->at) return false;
  /* rank 0 writes the remote chain's rows after the header it wrote */
  if (n && ch->csv && fwrite(b->p + b->at, 1, (size_t)n, ch->csv) != (size_t)n) {
    char buf[128];
    dr_fail(ch, DIAG_IO, "error writing '%s': %s", ch->csv_path, dr_strerror(errno, buf, sizeof buf));
  }
  b->at += (size_t)n;
  return !b->bad;
}

static bool dr_share_chains(Run *r, Diag *d) {
  int nd = r->o->eng.draws;
  for (int c = 0; c < r->o->eng.chains; c++) {
    Chain *ch = &r->chains[c];
    int owner = c % r->nranks;
    MpiPack b = {0};
    if (owner == r->rank) {
      if (ch->mem) { /* the memory CSV's text, then its buffer (malloc'd) back */
        fclose(ch->csv);
        ch->csv = NULL;
      }
      dr_pack_chain(&b, ch, nd);
      free(ch->mem);
      ch->mem = NULL, ch->mem_n = 0;
    }
    void *buf = b.p;
    size_t n = b.n;
    if (!mpi_bcast_blob(r->o->eng.comm, &buf, &n, owner)) {
      diag_error(d, DIAG_IO, (SrcPos){0}, "MPI: chain %d's draws could not be sent from rank %d",
                 c + 1, owner);
      return false;
    }
    MpiPack in = {.p = buf, .n = n};
    if (owner != r->rank && !dr_unpack_chain(&in, ch, nd)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "MPI: chain %d's draws from rank %d are malformed",
                 c + 1, owner);
      return false;
    }
  }
  return true;
}

/* Every rank learns whether any failed before the chains start (a rank that
   could not open its files), so none waits for the others' draws forever. */
static bool dr_all_ready(Run *r, bool ok, Diag *d) {
  bool bad = !ok;
  if (!mpi_allreduce_or(r->o->eng.comm, &bad)) bad = true;
  if (bad && ok)
    diag_error(d, DIAG_IO, (SrcPos){0}, "MPI: another rank could not start the run");
  return !bad;
}

bool driver_run_outputs(const Interp *in, int noutputs, const IrOutput *outputs,
                        const EngineVT *eng, const DriverOpts *o, RunResult **out, Diag *d) {
  *out = NULL;
  if (!dr_check_opts(eng, o, d)) return false;
  Run *r = gc_alloc(sizeof *r);
  r->in = in, r->eng = eng, r->o = o;
  r->noutputs = noutputs, r->outputs = outputs;
  dr_nested_rule(r);
  dr_choices_rule(r);
  r->rank = mpi_rank(o->eng.comm), r->nranks = mpi_size(o->eng.comm);
  /* the choices' files and summary and the variational fits are not sent
     between ranks: such runs go every chain on every rank */
  r->split = r->nranks > 1 && o->mpi_chains && !r->choices && !r->choices_table && !eng->vi_report;
  bool mem_csv = false;
  if (r->nranks > 1 && r->rank != 0) { /* rank 0 writes; the others keep quiet */
    DriverOpts *q = gc_alloc(sizeof *q);
    *q = *o;
    mem_csv = r->split && o->output_csv;
    q->output_csv = q->summary_json = NULL;
    q->summary_out = NULL;
    q->progress = 0;
    q->eng.choices = q->eng.save_metric = false;
    if (o->eng.set) { /* nor does it save a fit (advi's --save-params) */
      OptSet *set = opt_set_new();
      for (int k = 0; k < o->eng.set->n; k++)
        opt_set_put(set, o->eng.set->spec[k], strcmp(o->eng.set->spec[k]->name, "save-params")
                                                   ? o->eng.set->val[k]
                                                   : opt_default(o->eng.set->spec[k]));
      q->eng.set = set;
    }
    r->o = o = q;
    r->choices = false;
  }
  r->warmup = eng->uses_warmup ? o->eng.warmup : 0;
  r->iters = o->eng.draws * o->eng.thin;
  int m = o->eng.chains;
  r->chains = gc_alloc(sizeof(Chain) * (size_t)m);
  for (int c = 0; c < m; c++) {
    Chain *ch = &r->chains[c];
    ch->id = c;
    diag_init(&ch->d);
    csv_cols_init(&ch->cols);
    ch->out_nd = gc_alloc_atomic(sizeof(int) * (size_t)(noutputs + 1));
    ch->out_dims = gc_alloc_atomic(sizeof(int[CSV_MAX_DIMS]) * (size_t)(noutputs + 1));
    if (r->choices || r->choices_table) ch->clog = choices_log_new(o->eng.draws);
  }
  pthread_mutex_init(&r->mu, NULL);
  atomic_init(&r->stop, 0);
  r->m = m, r->n = o->eng.draws;
  r->eo = o->eng;
  r->prog = progress_new(stderr, (ProgressMode)o->progress, m, r->warmup, r->iters);
  if (r->prog) r->eo.progress = dr_engine_progress, r->eo.progress_ctx = r->prog;
  r->eo.interrupt = o->interrupt;
  if (o->mpi_chains) r->eo.comm = NULL; /* each chain is one rank's alone */

  const IrProgram *prog = in ? interp_program(in) : NULL;
  bool ok = driver_check_outputs(eng, o, prog, noutputs, outputs, d) &&
            dr_select(o, prog, noutputs, outputs, &r->keep, &r->nested_sel, &r->nnested_sel, d) &&
            dr_open_files(r, d);
  for (int c = 0; ok && mem_csv && c < m; c++)
    if (dr_mine(r, c) && !(r->chains[c].csv = open_memstream(&r->chains[c].mem, &r->chains[c].mem_n))) {
      diag_error(d, DIAG_NOMEM, (SrcPos){0}, "out of memory (chain %d's CSV text)", c + 1);
      ok = false;
    }
  if (r->nranks > 1) ok = dr_all_ready(r, ok, d);
  bool stopped = false;
  if (ok) {
    dr_run_all(r);
    progress_end(r->prog);
    if (r->split && !dr_share_chains(r, d)) ok = false;
    for (int c = 0; c < m; c++) stopped |= r->chains[c].interrupted;
    if (ok && dr_first_error(r, d)) ok = false;
  }
  /* files are closed before the chains are cut to those that kept draws */
  for (int c = 0; c < m; c++) {
    Chain *ch = &r->chains[c];
    const char *path = ch->csv_path;
    if (!dr_close_choices(ch) && ok) {
      char buf[128];
      diag_error(d, DIAG_IO, (SrcPos){0}, "error writing '%s': %s", ch->chf_path,
                 dr_strerror(errno, buf, sizeof buf));
      ok = false;
    }
    if (!dr_close_csv(ch) && ok) {
      char buf[128];
      diag_error(d, DIAG_IO, (SrcPos){0}, "error writing '%s': %s", path,
                 dr_strerror(errno, buf, sizeof buf));
      ok = false;
    }
  }
  if (ok && stopped && !dr_cut_interrupted(r)) {
    diag_error(d, DIAG_INTERRUPTED, (SrcPos){0}, "interrupted before any draw was kept");
    ok = false;
  }
  if (ok) ok = dr_same_columns(r, d);
  pthread_mutex_destroy(&r->mu);
  if (!ok) return false;

  RunResult *rr = dr_result(r);
  if (r->chains[0].clog) rr->summary_text = gc_printf("%s%s", rr->summary_text, dr_choices_summary(r));
  if (r->choices) {
    rr->choices_paths = gc_alloc(sizeof(char *) * (size_t)r->m);
    for (int c = 0; c < r->m; c++) rr->choices_paths[c] = r->chains[c].chf_path;
  }
  if (o->summary_out) {
    fputs(rr->summary_text, o->summary_out);
    fflush(o->summary_out);
  }
  if (o->summary_json && !rr_write_summary_json(rr, o->summary_json, d)) return false;
  *out = rr;
  return true;
}

/* ---- accessors ---------------------------------------------------------- */

int rr_num_chains(const RunResult *r) { return r->nchains; }
int rr_num_draws(const RunResult *r) { return r->ndraws; }
int rr_num_columns(const RunResult *r) { return r->ncols; }

const char *rr_column_name(const RunResult *r, int col) {
  return col >= 0 && col < r->ncols ? r->names[col] : NULL;
}

const char *rr_column_label(const RunResult *r, int col) {
  return col >= 0 && col < r->ncols ? r->labels[col] : NULL;
}

int rr_column_index(const RunResult *r, const char *name) {
  for (int i = 0; i < r->ncols; i++)
    if (!strcmp(r->names[i], name) || !strcmp(r->labels[i], name)) return i;
  /* tolerate spaces after commas in labels: "m[1, 2]" */
  char buf[512];
  size_t j = 0;
  for (const char *p = name; *p && j + 1 < sizeof buf; p++)
    if (*p != ' ') buf[j++] = *p;
  buf[j] = 0;
  for (int i = 0; i < r->ncols; i++)
    if (!strcmp(r->labels[i], buf)) return i;
  return -1;
}

double rr_draw(const RunResult *r, int chain, int draw, int col) {
  if (chain < 0 || chain >= r->nchains || draw < 0 || draw >= r->ndraws || col < 0 || col >= r->ncols)
    return NAN;
  return r->data[chain][(size_t)col * (size_t)r->ndraws + (size_t)draw];
}

const double *rr_column_draws(const RunResult *r, int chain, int col) {
  if (chain < 0 || chain >= r->nchains || col < 0 || col >= r->ncols) return NULL;
  return r->data[chain] + (size_t)col * (size_t)r->ndraws;
}

const double *rr_log_weights(const RunResult *r, int chain) {
  return r->weighted && chain >= 0 && chain < r->nchains ? r->lw[chain] : NULL;
}

const SummaryStats *rr_summary(const RunResult *r, int col) {
  return col >= 0 && col < r->ncols ? &r->stats[col] : NULL;
}

double rr_pareto_k(const RunResult *r) { return r->pareto_k; }
const SummaryVi *rr_vi(const RunResult *r) { return r->vi; }

bool rr_log_evidence(const RunResult *r, double *est, double *se) {
  /* the variational engines' draws carry log p - log q: their estimate is
     the one the summary prints (none when the weights were not kept) */
  if (!r->weighted && r->vi && isfinite(r->vi->log_evidence)) {
    if (est) *est = r->vi->log_evidence;
    if (se) *se = r->vi->log_evidence_se;
    return true;
  }
  if (!r->weighted) return false;
  if (est) *est = r->logz;
  if (se) *se = r->logz_se;
  return true;
}

const char *rr_engine(const RunResult *r) { return r->engine; }
const char *rr_engine_reason(const RunResult *r) { return r->engine_reason; }
const char *rr_backend(const RunResult *r) { return r->backend; }
const char *rr_summary_text(const RunResult *r) { return r->summary_text; }
int rr_num_warnings(const RunResult *r) { return r->nwarnings; }
const char *rr_warnings_text(const RunResult *r) { return r->warnings_text; }
const RunWarning *rr_warning(const RunResult *r, int i) {
  return i >= 0 && i < r->nwarnings ? &r->warnings[i] : NULL;
}
bool rr_interrupted(const RunResult *r) { return r->interrupted; }

const char *rr_choices_path(const RunResult *r, int chain) {
  return r->choices_paths && chain >= 0 && chain < r->nchains ? r->choices_paths[chain] : NULL;
}

double rr_chain_seconds(const RunResult *r, int chain, bool warmup) {
  if (chain < 0 || chain >= r->nchains) return NAN;
  return warmup ? r->warm_s[chain] : r->samp_s[chain];
}
