/* api.c — the public API of ppl.h over the internal stages: parse, check,
 * lower, analyse, load data, run an engine through the driver.
 *
 * Handles are root allocations (scanned by the collector, never collected) so
 * the GC objects they point to stay alive while the host holds them.  Every
 * entry point registers the calling thread with the collector first, so hosts
 * may call in from any thread.
 *
 * The entry points that allocate much run under an out-of-memory guard (see
 * "guarded entry points" at the end): a failed allocation anywhere below
 * becomes PPL_ERR_NOMEM.  The jump may leave a lock of the model's
 * interpreter or JIT held, so the model of such a call is retired: later
 * calls on it fail and ppl_model_free releases only its handle.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../inference/amortized.h"
#include "../inference/csvread.h"
#include "../inference/driver.h"
#include "../inference/engine.h"
#include "../inference/generate.h"
#include "../inference/ld_shard.h"
#include "../inference/logdensity.h"
#include "../inference/motif.h"
#include "../inference/mpi_run.h"
#include "../inference/smc_mpi.h"
#include "../inference/progress.h"
#include "../inference/svi.h"
#include "../inference/train.h"
#include "../ir/enum.h"
#include "../ir/interp.h"
#include "../ir/plate_vec.h"
#include "../ir/shard.h"
#include "../parser/ast.h"
#include "../lang/check.h"
#include "../stdlib/lm.h"
#include "../stdlib/lm_family.h"
#include "../stdlib/tensor.h"
#include "data.h"
#include "ppl.h"
#include "start.h"
#include "ppl_config.h"

struct ppl_context {
  ppl_config cfg;
  Diag err;
  int nhost;
  HostFunc *host; /* root allocation, grown by ppl_register_function */
  DistRegistry fams; /* ppl_register_family's (reachable: the context is a root) */
  atomic_int interrupt; /* set by ppl_interrupt, cleared when ppl_run returns */
  LmSet lm; /* ppl_register_lm's backends (malloc'd copies, owned: destroyed with the context) */
  LmFamilies *lmf;    /* the lm and lm_next families (in fams), bound to a run's models */
  atomic_bool lm_busy; /* a run binds lmf: one language-model run at a time */
};

struct ppl_model {
  ppl_context *ctx;
  const char *file;
  IrProgram *ir;
  IrAnalysis *an;
  Interp *in;         /* NULL until data are committed */
  json_t *pending;    /* typed-array data not yet committed */
  LogDensity *ld;     /* built on first use: the runs' shared one (ld_shared) */
  bool jit_tried;     /* ld is the compiled one for the density calls */
  LogDensity *ld_ir;  /* for ppl_model_llvm_ir */
  const char *llvm_ir;
  const char *data_file; /* for the CSV header */
  DataSource *src;       /* the data as given (ppl_train --amortize reads it unvalidated) */
  char *ir_text, *analysis_text;
  int nwarnings;         /* the checker's (CheckedProgram.warnings) */
  const char **warnings;
  bool retired;       /* ran out of memory: only ppl_model_free is allowed */
  /* Discrete latents summed out by enumeration (ir/enum.h): the plan (NULL
     without discrete latents); when every one is enumerated, the
     marginalised program's analysis, and once data are loaded and the
     factors are within ENUM_FACTOR_LIMIT its interpreter, which the
     gradient engines and the log density calls run */
  EnumPlan *en;
  IrAnalysis *an_en;
  Interp *in_en;
  Interp *in_marg;     /* the same with the pr_ outputs (--enum-marginals), on first use */
  DataSource *en_src;  /* the data both were loaded from */
};

struct ppl_result {
  ppl_context *ctx;
  RunResult *rr;
  const char *engine, *reason;
};

/* ---- errors ----------------------------------------------------------- */

static ppl_status fail(ppl_context *ctx, DiagCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ppl_status fail(ppl_context *ctx, DiagCode code, const char *fmt, ...) {
  diag_init(&ctx->err);
  va_list ap;
  va_start(ap, fmt);
  diag_verror(&ctx->err, code, (SrcPos){0}, fmt, ap);
  va_end(ap);
  return (ppl_status)code;
}

/* Take over a stage's Diag as the context's last error. */
static ppl_status fail_diag(ppl_context *ctx, const Diag *d) {
  ctx->err = *d;
  if (ctx->err.code == DIAG_OK) {
    ctx->err.code = DIAG_INTERNAL;
    snprintf(ctx->err.msg, sizeof ctx->err.msg, "internal error: a stage failed without a message");
  }
  return (ppl_status)ctx->err.code;
}

static ppl_status ok(ppl_context *ctx) {
  diag_init(&ctx->err);
  return PPL_OK;
}

int ppl_version(void) { return PPL_VERSION_NUMBER; }
const char *ppl_version_string(void) { return PPL_VERSION_STRING; }

const char *ppl_status_name(ppl_status s) {
  switch (s) {
  case PPL_OK: return "ok";
  case PPL_ERR_USAGE: return "usage error";
  case PPL_ERR_SYNTAX: return "syntax error";
  case PPL_ERR_TYPE: return "type error";
  case PPL_ERR_DATA: return "data error";
  case PPL_ERR_RUNTIME: return "runtime error";
  case PPL_ERR_IO: return "i/o error";
  case PPL_ERR_INTERNAL: return "internal error";
  case PPL_ERR_NOMEM: return "out of memory";
  case PPL_ERR_INTERRUPTED: return "interrupted";
  }
  return "unknown status";
}

/* ---- context ---------------------------------------------------------- */

void ppl_config_default(ppl_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->print_out = NULL; /* stdout, resolved at use: stdout is not a constant */
  cfg->threads = 0;
}

ppl_context *ppl_context_new(const ppl_config *cfg) {
  gc_ensure_thread();
  GcGuard g;
  if (!gc_guard_enter(&g, setjmp(g.jb))) return NULL;
  ppl_context *ctx = gc_alloc_root(sizeof *ctx);
  gc_guard_leave(&g);
  if (cfg) ctx->cfg = *cfg;
  else ppl_config_default(&ctx->cfg);
  if (ctx->cfg.threads < 0) ctx->cfg.threads = 0;
  diag_init(&ctx->err);
  atomic_init(&ctx->interrupt, 0);
  atomic_init(&ctx->lm_busy, false);
  if (!gc_guard_enter(&g, setjmp(g.jb))) return NULL;
  ctx->lmf = lm_families_new();
  gc_guard_leave(&g);
  if (!ctx->lmf) {
    gc_free_root(ctx);
    return NULL;
  }
  dist_registry_add(&ctx->fams, &ctx->lmf->lm);
  dist_registry_add(&ctx->fams, &ctx->lmf->lm_next);
  tensor_blas_init(); /* now: OpenBLAS's idle threads spin from the moment it loads */
  return ctx;
}

void ppl_interrupt(ppl_context *ctx) {
  if (ctx) atomic_store(&ctx->interrupt, 1); /* lock-free: async-signal-safe */
}

void ppl_context_free(ppl_context *ctx) {
  if (!ctx) return;
  gc_ensure_thread();
  if (ctx->host) gc_free_root(ctx->host);
  lm_families_free(ctx->lmf);
  for (int i = 0; i < ctx->lm.n; i++) {
    free((char *)ctx->lm.names[i]);
    lm_close(ctx->lm.b[i]);
  }
  free(ctx->lm.names);
  free(ctx->lm.b);
  gc_free_root(ctx);
}

const char *ppl_errmsg(const ppl_context *ctx) { return ctx ? ctx->err.msg : "no context"; }

ppl_status ppl_errpos(const ppl_context *ctx, const char **file, int *line, int *col) {
  if (!ctx) return PPL_ERR_USAGE;
  if (file) *file = ctx->err.pos.file;
  if (line) *line = ctx->err.pos.line;
  if (col) *col = ctx->err.pos.col;
  return (ppl_status)ctx->err.code;
}

static bool valid_name(const char *s) {
  if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return false;
  return true;
}

/* Both registrations: `who` names the call in messages; f has the
   callbacks, arity and kinds (the host's string, copied here). */
static ppl_status register_host_(ppl_context *ctx, const char *who, const char *name, HostFunc f) {
  if (!name) return fail(ctx, DIAG_USAGE, "%s: name is NULL", who);
  if (!valid_name(name)) return fail(ctx, DIAG_USAGE, "%s: invalid function name '%s'", who, name);
  if (!f.fn && !f.fn_ex && !f.str_fn)
    return fail(ctx, DIAG_USAGE, "%s: NULL function for '%s'", who, name);
  if (f.arity < 0 || f.arity > 16)
    return fail(ctx, DIAG_USAGE, "%s: arity of '%s' must be 0..16, got %d", who, name, f.arity);
  if (builtin_lookup(name) || dist_lookup(name))
    return fail(ctx, DIAG_USAGE, "%s: '%s' is already a built-in function", who, name);
  if (dist_find(&ctx->fams, name))
    return fail(ctx, DIAG_USAGE, "%s: '%s' is already a registered family", who, name);
  for (int i = 0; i < ctx->nhost; i++)
    if (!strcmp(ctx->host[i].name, name))
      return fail(ctx, DIAG_USAGE, "%s: '%s' is already registered", who, name);
  HostFunc *h = gc_alloc_root(sizeof(HostFunc) * (size_t)(ctx->nhost + 1));
  if (ctx->nhost) memcpy(h, ctx->host, sizeof(HostFunc) * (size_t)ctx->nhost);
  /* the strings are copied into root blocks too: the GC does not see the host's memory */
  char *nm = gc_alloc_root(strlen(name) + 1);
  strcpy(nm, name);
  f.name = nm;
  if (f.kinds) {
    char *k = gc_alloc_root(strlen(f.kinds) + 1);
    strcpy(k, f.kinds);
    f.kinds = k;
  }
  h[ctx->nhost] = f;
  if (ctx->host) gc_free_root(ctx->host);
  ctx->host = h;
  ctx->nhost++;
  return ok(ctx);
}

static ppl_status register_function_(ppl_context *ctx, const char *name, int arity, ppl_host_fn fn,
                                    void *ud) {
  return register_host_(ctx, "ppl_register_function", name,
                        (HostFunc){.arity = arity, .fn = fn, .ud = ud});
}

static ppl_status register_function_ex_(ppl_context *ctx, const char *name, const char *args,
                                       ppl_host_grad_fn fn, int has_gradient, void *ud) {
  const char *who = "ppl_register_function_ex";
  if (!args) return fail(ctx, DIAG_USAGE, "%s: args is NULL (one letter an argument: 'r' or 'v')", who);
  if (strspn(args, "rv") != strlen(args))
    return fail(ctx, DIAG_USAGE, "%s: args of '%s' must be letters 'r' (real) and 'v' (vector), got \"%s\"",
                who, name ? name : "?", args);
  return register_host_(ctx, who, name,
                        (HostFunc){.arity = (int)strlen(args), .kinds = args, .fn_ex = fn,
                                   .has_grad = has_gradient != 0, .ud = ud});
}

static ppl_status register_string_function_(ppl_context *ctx, const char *name, int arity,
                                            ppl_host_str_fn fn, void *ud) {
  return register_host_(ctx, "ppl_register_string_function", name,
                        (HostFunc){.arity = arity, .str_fn = fn, .ud = ud});
}

/* ---- host families ---------------------------------------------------- */

/* A host's family as a DistFamily: the record is its own context, so the
   *_ctx kernels reach the host's callbacks. */
typedef struct HostFamily {
  DistFamily f;
  ppl_family h;
} HostFamily;

static double hf_lpdf(void *c, double x, const double *p) {
  const HostFamily *hf = c;
  return hf->h.lpdf(hf->h.ud, x, p);
}

static double hf_lpdf_grad(void *c, double x, const double *p, double *dx, double *dp) {
  const HostFamily *hf = c;
  *dx = 0;
  for (int i = 0; i < hf->f.nparams; i++) dp[i] = 0;
  double lp = hf->h.lpdf_grad(hf->h.ud, x, p, dx, dp);
  if (!isfinite(lp) || hf->f.discrete) *dx = 0;
  if (!isfinite(lp))
    for (int i = 0; i < hf->f.nparams; i++) dp[i] = 0;
  return lp;
}

static double hf_rng(void *c, Rng *r, const double *p) {
  const HostFamily *hf = c;
  return hf->h.quantile(hf->h.ud, rng_uniform(r), p);
}

static void hf_positive(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = INFINITY;
}
static void hf_unit(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = 1;
}

static ppl_status register_family_(ppl_context *ctx, const ppl_family *fam) {
  if (!fam) return fail(ctx, DIAG_USAGE, "ppl_register_family: fam is NULL");
  const char *name = fam->name;
  if (!name) return fail(ctx, DIAG_USAGE, "ppl_register_family: name is NULL");
  if (!valid_name(name))
    return fail(ctx, DIAG_USAGE, "ppl_register_family: invalid family name '%s'", name);
  if (fam->nparams < 1 || fam->nparams > 4) /* ppl_family.param_names[4] */
    return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' must have 1..%d parameters, got %d", name,
                4, fam->nparams);
  if (!fam->lpdf || !fam->quantile)
    return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' needs lpdf and quantile", name);
  if (fam->support < PPL_SUPPORT_REAL || fam->support > PPL_SUPPORT_UNIT)
    return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' has an unknown support", name);
  if (builtin_lookup(name) || dist_lookup(name))
    return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' is already a built-in name", name);
  for (int i = 0; i < ctx->nhost; i++)
    if (!strcmp(ctx->host[i].name, name))
      return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' is already a host function", name);
  if (dist_find(&ctx->fams, name))
    return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' is already registered", name);
  HostFamily *hf = gc_alloc(sizeof *hf);
  hf->h = *fam;
  hf->h.name = gc_strdup(name);
  DistFamily *f = &hf->f;
  f->name = hf->h.name;
  f->nparams = fam->nparams;
  static const uint8_t dom[] = {PD_ANY, PD_POS, PD_PROB};
  for (int i = 0; i < fam->nparams; i++) {
    f->pnames[i] = fam->param_names[i] ? gc_strdup(fam->param_names[i]) : gc_printf("p%d", i + 1);
    hf->h.param_names[i] = f->pnames[i];
    if (fam->param_kinds[i] < PPL_PARAM_REAL || fam->param_kinds[i] > PPL_PARAM_UNIT)
      return fail(ctx, DIAG_USAGE, "ppl_register_family: '%s' parameter %d has an unknown kind", name,
                  i + 1);
    f->pdom[i] = dom[fam->param_kinds[i]];
    f->ptype[i] = ty_make(TY_REAL, 0);
  }
  f->discrete = fam->discrete != 0;
  f->vtype = ty_make(f->discrete ? TY_INT : TY_REAL, 0);
  f->support = fam->support == PPL_SUPPORT_POSITIVE ? hf_positive
               : fam->support == PPL_SUPPORT_UNIT   ? hf_unit
                                                    : NULL;
  f->support_reads = DIST_SUPPORT_READS(0); /* the three supports read no parameter */
  f->ctx = hf;
  f->lpdf1_ctx = hf_lpdf;
  f->lpdf_grad1_ctx = fam->lpdf_grad ? hf_lpdf_grad : NULL;
  f->rng1_ctx = hf_rng;
  dist_registry_add(&ctx->fams, f);
  return ok(ctx);
}

/* ---- models ----------------------------------------------------------- */

static ppl_status compile_ast(ppl_context *ctx, Ast *ast, const char *file, ppl_model **out) {
  Diag d;
  diag_init(&d);
  CheckedProgram *cp = check_program_fams(ast, file, ctx->nhost, ctx->host, &ctx->fams, &d);
  if (!cp) return fail_diag(ctx, &d);
  IrProgram *ir = ir_lower(cp, &d);
  if (!ir) return fail_diag(ctx, &d);
  ppl_model *m = gc_alloc_root(sizeof *m);
  m->ctx = ctx;
  m->file = file;
  m->ir = ir;
  m->an = ir_analyze(ir);
  m->en = enum_plan(ir, m->an);
  if (m->en && m->en->all) m->an_en = ir_analyze(m->en->prog);
  m->nwarnings = cp->nwarnings;
  m->warnings = cp->warnings;
  *out = m;
  return ok(ctx);
}

static ppl_status compile_file_(ppl_context *ctx, const char *path, ppl_model **out) {
  if (!ctx) return PPL_ERR_USAGE;
  if (!out) return fail(ctx, DIAG_USAGE, "ppl_compile_file: out is NULL");
  *out = NULL;
  if (!path) return fail(ctx, DIAG_USAGE, "ppl_compile_file: path is NULL");
  gc_ensure_thread();
  Diag d;
  diag_init(&d);
  Ast *ast = parse_file(path, &d);
  if (!ast) return fail_diag(ctx, &d);
  return compile_ast(ctx, ast, gc_strdup(path), out);
}

static ppl_status compile_string_(ppl_context *ctx, const char *source, const char *name,
                              ppl_model **out) {
  if (!ctx) return PPL_ERR_USAGE;
  if (!out) return fail(ctx, DIAG_USAGE, "ppl_compile_string: out is NULL");
  *out = NULL;
  if (!source) return fail(ctx, DIAG_USAGE, "ppl_compile_string: source is NULL");
  gc_ensure_thread();
  const char *file = gc_strdup(name ? name : "<string>");
  Diag d;
  diag_init(&d);
  Ast *ast = parse_string(source, strlen(source), file, &d);
  if (!ast) return fail_diag(ctx, &d);
  return compile_ast(ctx, ast, file, out);
}

int ppl_model_num_warnings(const ppl_model *m) { return m ? m->nwarnings : 0; }

const char *ppl_model_warning(const ppl_model *m, int i) {
  return m && i >= 0 && i < m->nwarnings ? m->warnings[i] : NULL;
}

void ppl_model_free(ppl_model *m) {
  if (!m) return;
  gc_ensure_thread();
  if (m->retired) { /* its locks may be held: leak the JIT's memory, not hang */
    gc_free_root(m);
    return;
  }
  if (m->pending) json_decref(m->pending);
  ld_free(m->ld_ir);
  ld_shared_free(m->in); /* m->ld among them */
  ld_shared_free(m->in_en);
  ld_shared_free(m->in_marg);
  gc_free_root(m);
}

static bool has_data_decls(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->op == IR_DATA) return true;
    if (ins->op == IR_IF && (has_data_decls(&ins->then_b) || has_data_decls(&ins->else_b))) return true;
    if ((ins->op == IR_FOR || ins->op == IR_WHILE) && has_data_decls(&ins->body)) return true;
  }
  return false;
}

static FILE *print_out(const ppl_model *m) {
  return m->ctx->cfg.print_out ? m->ctx->cfg.print_out : stdout;
}

/* Load data from src (NULL: no data given) into a fresh interpreter. */
static ppl_status load(ppl_model *m, DataSource *src) {
  Diag d;
  diag_init(&d);
  Interp *in = interp_new(m->ir, print_out(m));
  bool none = !src;
  if (none) src = data_empty();
  if (!interp_load_data(in, src, &d)) {
    if (none && d.code == DIAG_DATA && has_data_decls(&m->ir->data_b) && !strchr(d.msg, '\n'))
      snprintf(d.msg + strlen(d.msg), sizeof d.msg - strlen(d.msg),
               " (no data: call ppl_set_data_json/ppl_set_data_file first)");
    m->in = NULL;
    return fail_diag(m->ctx, &d);
  }
  /* the old data's compiled log density passes to the new data, which reuse
     it without compiling when their shapes are the same (ld_shared_pass) */
  ld_shared_pass(m->in, in); /* m->ld among them */
  ld_shared_free(m->in_marg);
  Interp *old_en = m->in_en;
  m->in = in;
  m->in_en = m->in_marg = NULL;
  m->en_src = src;
  if (m->an_en) { /* the same data for the marginalised program */
    enum_sizes(m->en, interp_data_regs(in));
    Interp *ie = interp_new(m->en->prog, print_out(m));
    Diag de;
    diag_init(&de);
    if ((m->en->largest < 0 || m->en->largest <= ENUM_FACTOR_LIMIT) &&
        interp_load_data(ie, src, &de))
      m->in_en = ie;
  }
  ld_shared_pass(old_en, m->in_en);
  ld_free(m->ld_ir);
  m->ld = m->ld_ir = NULL;
  m->llvm_ir = NULL;
  m->jit_tried = false;
  return ok(m->ctx);
}

static ppl_status set_data_json_(ppl_model *m, const char *json, const char *name) {
  if (!m) return PPL_ERR_USAGE;
  if (!json) return fail(m->ctx, DIAG_USAGE, "ppl_set_data_json: json is NULL");
  gc_ensure_thread();
  Diag d;
  diag_init(&d);
  DataSource *src = data_json_string(json, strlen(json), name ? name : "<data>", &d);
  if (!src) return fail_diag(m->ctx, &d);
  m->data_file = gc_strdup(name ? name : "<data>");
  m->src = src;
  return load(m, src);
}

static ppl_status set_data_file_(ppl_model *m, const char *path) {
  if (!m) return PPL_ERR_USAGE;
  if (!path) return fail(m->ctx, DIAG_USAGE, "ppl_set_data_file: path is NULL");
  gc_ensure_thread();
  Diag d;
  diag_init(&d);
  DataSource *src = data_json_file(path, &d);
  if (!src) return fail_diag(m->ctx, &d);
  m->data_file = gc_strdup(path);
  m->src = src;
  return load(m, src);
}

/* Typed arrays are gathered into a JSON object in CmdStan's layout, so that
 * one loader validates every kind of data the same way. */
static json_t *nest(const char *kind, const void *values, int ndims, const int *dims, size_t *pos) {
  if (ndims == 0) {
    size_t i = (*pos)++;
    if (kind[0] == 'i') return json_integer((json_int_t)((const int64_t *)values)[i]);
    double x = ((const double *)values)[i];
    if (isnan(x)) return json_string("NaN");
    if (isinf(x)) return json_string(x > 0 ? "Inf" : "-Inf");
    return json_real(x);
  }
  json_t *a = json_array();
  for (int i = 0; i < dims[0]; i++) json_array_append_new(a, nest(kind, values, ndims - 1, dims + 1, pos));
  return a;
}

static ppl_status put_typed(ppl_model *m, const char *fn, const char *name, const char *kind,
                            const void *values, int ndims, const int *dims) {
  if (!m) return PPL_ERR_USAGE;
  gc_ensure_thread();
  if (!name) return fail(m->ctx, DIAG_USAGE, "%s: name is NULL", fn);
  if (!valid_name(name)) return fail(m->ctx, DIAG_USAGE, "%s: invalid variable name '%s'", fn, name);
  if (ndims < 0 || ndims > 8 || (ndims > 0 && !dims))
    return fail(m->ctx, DIAG_USAGE, "%s: \"%s\": ndims must be 0..8 with dims given", fn, name);
  size_t total = 1;
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 0) return fail(m->ctx, DIAG_USAGE, "%s: \"%s\": negative size %d", fn, name, dims[i]);
    total *= (size_t)dims[i];
  }
  if (total > 0 && !values) return fail(m->ctx, DIAG_USAGE, "%s: \"%s\": values is NULL", fn, name);
  if (!m->pending) m->pending = json_object();
  size_t pos = 0;
  json_object_set_new(m->pending, name, nest(kind, values, ndims, dims, &pos));
  return ok(m->ctx);
}

ppl_status ppl_data_int(ppl_model *m, const char *name, const int64_t *values, int ndims,
                        const int *dims) {
  return put_typed(m, "ppl_data_int", name, "int", values, ndims, dims);
}

ppl_status ppl_data_real(ppl_model *m, const char *name, const double *values, int ndims,
                         const int *dims) {
  return put_typed(m, "ppl_data_real", name, "real", values, ndims, dims);
}

static ppl_status data_commit_(ppl_model *m) {
  if (!m) return PPL_ERR_USAGE;
  gc_ensure_thread();
  if (!m->pending) return load(m, NULL);
  /* read as a data file's JSON is, without printing and parsing it */
  DataSource *src = data_json_object(m->pending, "<data>");
  json_decref(m->pending);
  m->pending = NULL;
  m->src = src;
  return load(m, src);
}

static const char *model_ir_(ppl_model *m) {
  if (!m) return NULL;
  gc_ensure_thread();
  if (!m->ir_text) m->ir_text = ir_print(m->ir);
  if (!m->ir_text) return NULL;
  /* the program nuts runs when the discrete latents are summed out */
  if (m->en && m->en->all && !strstr(m->ir_text, "\nmarginalised by enumeration "))
    m->ir_text = gc_printf("%s\nmarginalised by enumeration (%s; what nuts, hmc, advi and "
                           "ppl_log_density run):\n%s", m->ir_text, enum_names(m->en),
                           ir_print(m->en->prog));
  return m->ir_text;
}

static ppl_status need_data(ppl_model *m) {
  if (m->in) return PPL_OK;
  /* no data given: fine when the program declares none */
  return load(m, NULL);
}

/* The program the log density calls evaluate: the marginalised one when the
   discrete latents are summed out. */
static const Interp *ld_in(const ppl_model *m) { return m->in_en ? m->in_en : m->in; }

static ppl_status need_ld(ppl_model *m) {
  ppl_status s = need_data(m);
  if (s != PPL_OK) return s;
  if (m->ld) return PPL_OK;
  Diag d;
  diag_init(&d);
  m->ld = ld_shared(ld_in(m), false, &d); /* the interpreted one: the analysis needs no compiling */
  if (!m->ld) return fail_diag(m->ctx, &d);
  return PPL_OK;
}

static const IrLatentInfo *improper_latent(const ppl_model *m);
static bool accepts_improper(const EngineVT *e);
static bool enum_runs(ppl_model *m, const EngineVT *e);
static const char *enum_fallback(const ppl_model *m);
static const char *enum_reason(const ppl_model *m, const EngineVT *e, const char *rest);
static const EngineVT *enum_select(const ppl_model *m, const char **why);

static const char *model_analysis_(ppl_model *m) {
  if (!m) return NULL;
  gc_ensure_thread();
  if (m->analysis_text) return m->analysis_text;
  long n = -1;
  if (m->an->fixed_structure && need_ld(m) == PPL_OK) n = (long)ld_dim(m->ld);
  diag_init(&m->ctx->err);
  const char *why = NULL;
  const EngineVT *e = NULL;
  if (m->an_en && (e = enum_select(m, &why)) != NULL && enum_runs(m, e)) {
    const char *dash = strstr(why, " — ");
    why = enum_reason(m, e, dash ? dash + strlen(" — ") : why);
  } else {
    e = engine_select(m->an, &why);
    if (e) why = gc_printf("%s%s", why, enum_fallback(m));
  }
  char *text = ir_analysis_print(m->ir, m->an, n);
  if (m->en) text = gc_printf("%s%s", text, enum_print(m->en));
  /* the rows an MPI run splits (nuts and hmc: docs/scaling.md), when there are */
  const IrShard *sh = m->an->fixed_structure && m->an->all_continuous ? ir_shard_plan(m->ir) : NULL;
  if (sh && !sh->why) text = gc_printf("%s%s", text, ir_shard_print(sh));
  const char *fit = ""; /* the engines whose traits fit the program */
  const IrLatentInfo *imp = improper_latent(m);
  for (const EngineVT *const *all = engine_all(); *all; all++)
    if ((engine_fits(*all, m->an, NULL) || enum_runs(m, *all)) && (!imp || accepts_improper(*all)))
      fit = gc_printf("%s%s%s", fit, *fit ? ", " : "", (*all)->name);
  m->analysis_text = gc_printf("%sengines that can run it: %s\nengine: %s\n", text, fit,
                               e ? why : "none");
  return m->analysis_text;
}

static const char *model_dependencies_(ppl_model *m) { return ir_deps_print(m->ir, m->an); }

static const char *model_plates_(ppl_model *m) {
  const char *rep = "";
  pv_program(m->ir, &rep);
  return rep;
}

/* ---- log density ------------------------------------------------------- */

static ppl_status num_unconstrained_(ppl_model *m, size_t *n) {
  if (!m) return PPL_ERR_USAGE;
  if (!n) return fail(m->ctx, DIAG_USAGE, "ppl_num_unconstrained: n is NULL");
  gc_ensure_thread();
  *n = 0;
  ppl_status s = need_ld(m);
  if (s != PPL_OK) return s;
  *n = ld_dim(m->ld);
  return ok(m->ctx);
}

static ppl_status check_dim(ppl_model *m, const char *fn, const void *p, size_t n) {
  ppl_status s = need_ld(m);
  if (s != PPL_OK) return s;
  if (!p) return fail(m->ctx, DIAG_USAGE, "%s: NULL array", fn);
  if (n != ld_dim(m->ld))
    return fail(m->ctx, DIAG_USAGE, "%s: the model has %zu unconstrained parameters, got %zu", fn,
                ld_dim(m->ld), n);
  return PPL_OK;
}

/* The density calls run compiled code where the JIT takes the program. */
static void want_jit(ppl_model *m) {
  if (m->jit_tried || !m->ld) return;
  m->jit_tried = true;
  if (m->ctx->cfg.no_jit) return;
  Diag d;
  diag_init(&d);
  LogDensity *lj = ld_shared(ld_in(m), true, &d); /* the same one ppl_run's chains use */
  if (lj) m->ld = lj;
}

static const char *model_llvm_ir_(ppl_model *m) {
  if (!m) return NULL;
  gc_ensure_thread();
  if (m->llvm_ir) return m->llvm_ir;
  if (need_ld(m) != PPL_OK) return NULL;
  Diag d;
  diag_init(&d);
  if (!m->ld_ir) m->ld_ir = ld_new(ld_in(m), &d);
  if (!m->ld_ir) {
    fail_diag(m->ctx, &d);
    return NULL;
  }
  if (!ld_use_jit(m->ld_ir, true)) {
    fail(m->ctx, DIAG_USAGE, "the JIT does not compile this program: %s", ld_jit_refusal(m->ld_ir));
    return NULL;
  }
  m->llvm_ir = ld_llvm_ir(m->ld_ir);
  ok(m->ctx);
  return m->llvm_ir;
}

static const char *model_runtime_calls_(ppl_model *m) {
  if (!m || !model_llvm_ir_(m)) return NULL;
  return ld_runtime_calls(m->ld_ir);
}

static ppl_status log_density(ppl_model *m, const double *theta, size_t n, double *lp) {
  if (lp) *lp = NAN; /* until there is a value */
  ppl_status s = check_dim(m, "ppl_log_density", theta, n);
  if (s != PPL_OK) return s;
  want_jit(m);
  if (!lp) return fail(m->ctx, DIAG_USAGE, "ppl_log_density: lp is NULL");
  Diag d;
  diag_init(&d);
  if (!ld_eval(m->ld, theta, lp, &d)) return fail_diag(m->ctx, &d);
  return ok(m->ctx);
}

static ppl_status log_density_gradient(ppl_model *m, const double *theta, size_t n, double *lp,
                                       double *grad) {
  if (lp) *lp = NAN; /* until there is a value */
  ppl_status s = check_dim(m, "ppl_log_density_gradient", theta, n);
  if (s != PPL_OK) return s;
  if (!lp || (n > 0 && !grad))
    return fail(m->ctx, DIAG_USAGE, "ppl_log_density_gradient: lp or grad is NULL");
  want_jit(m);
  Diag d;
  diag_init(&d);
  if (!ld_eval_grad(m->ld, theta, lp, grad, &d)) return fail_diag(m->ctx, &d);
  return ok(m->ctx);
}

static ppl_status num_constrained_(ppl_model *m, size_t *n) {
  if (!m) return PPL_ERR_USAGE;
  if (!n) return fail(m->ctx, DIAG_USAGE, "ppl_num_constrained: n is NULL");
  gc_ensure_thread();
  *n = 0;
  ppl_status s = need_ld(m);
  if (s != PPL_OK) return s;
  *n = ld_num_constrained(m->ld);
  return ok(m->ctx);
}

static ppl_status constrain_(ppl_model *m, const double *theta, double *x) {
  if (!m) return PPL_ERR_USAGE;
  gc_ensure_thread();
  ppl_status s = need_ld(m);
  if (s != PPL_OK) return s;
  if (!theta || !x) return fail(m->ctx, DIAG_USAGE, "ppl_constrain: NULL array");
  Diag d;
  diag_init(&d);
  if (!ld_constrain(m->ld, theta, x, &d)) return fail_diag(m->ctx, &d);
  return ok(m->ctx);
}

static ppl_status unconstrain_(ppl_model *m, const double *x, double *theta) {
  if (!m) return PPL_ERR_USAGE;
  gc_ensure_thread();
  ppl_status s = need_ld(m);
  if (s != PPL_OK) return s;
  if (!theta || !x) return fail(m->ctx, DIAG_USAGE, "ppl_unconstrain: NULL array");
  Diag d;
  diag_init(&d);
  if (!ld_unconstrain(m->ld, x, theta, &d)) return fail_diag(m->ctx, &d);
  return ok(m->ctx);
}

/* ---- running ----------------------------------------------------------- */

/* The typed fields of ppl_run_options and the options they hold: the API's
 * compatibility layer over the option tables (new options have no field and
 * are set by name only). */
typedef struct RunField {
  const char *name;
  size_t off;
  char kind; /* 'i' int, 'u' uint64_t (not range-checked), 'r' double, 'b' int flag,
                's' enum as a string (NULL = the default) */
} RunField;

#define RF(name, field, kind) {name, offsetof(ppl_run_options, field), kind}
static const RunField run_fields[] = {
    RF("chains", chains, 'i'),         RF("draws", draws, 'i'),
    RF("warmup", warmup, 'i'),         RF("thin", thin, 'i'),
    RF("seed", seed, 'u'),             RF("metric", metric, 's'),
    RF("max-depth", max_depth, 'i'),   RF("adapt-delta", adapt_delta, 'r'),
    RF("particles", particles, 'i'),   RF("resample", resample, 's'),
    RF("ess-threshold", ess_threshold, 'r'), RF("rejuvenate", rejuvenate, 'i'),
    RF("ancestor-sampling", ancestor_sampling, 'b'), RF("no-jit", no_jit, 'b'),
    RF("stepsize", stepsize, 'r'),     RF("stepsize-jitter", stepsize_jitter, 'r'),
    RF("int-time", int_time, 'r'),     RF("init", init_radius, 'r'),
};
#undef RF

static const RunField *run_field(const char *name) {
  for (size_t k = 0; k < sizeof run_fields / sizeof run_fields[0]; k++)
    if (!strcmp(run_fields[k].name, name)) return &run_fields[k];
  return NULL;
}

/* Write v into the field f of o. */
static void field_put(ppl_run_options *o, const RunField *f, const OptSpec *s, OptValue v) {
  char *p = (char *)o + f->off;
  if (v.path) return; /* a file (--init FILE, --metric FILE) is set by name only */
  switch (f->kind) {
  case 'i': *(int *)p = (int)v.i; break;
  case 'u': *(uint64_t *)p = (uint64_t)v.i; break;
  case 'r': *(double *)p = v.r; break;
  case 'b': *(int *)p = (int)v.i; break;
  case 's': *(const char **)p = s->choices[v.i]; break; /* static storage */
  }
}

/* The value of field f of o, validated against s; false with err. */
static bool field_get(const ppl_run_options *o, const RunField *f, const OptSpec *s, OptValue *v,
                      char *err, size_t n) {
  const char *p = (const char *)o + f->off;
  *v = (OptValue){0};
  switch (f->kind) {
  case 'i': v->i = *(const int *)p; return opt_check_int(s, v->i, err, n);
  case 'u': v->i = (int64_t) * (const uint64_t *)p; return true; /* any 64-bit seed */
  case 'r': v->r = *(const double *)p; return opt_check_real(s, v->r, err, n);
  case 'b': v->i = *(const int *)p != 0; return true;
  case 's': {
    const char *t = *(const char *const *)p;
    if (!t) t = s->def;
    return opt_parse(s, t, v, err, n);
  }
  }
  return false;
}

/* What ppl_run_set recorded: the options given by name, and the last message. */
struct ppl_run_named {
  OptSet set;
  char msg[256];
  const MpiComm *comm; /* ppl_run_set_mpi; NULL: one process */
  int mpi_split;       /* 0 auto, 1 chains, 2 shard */
};

void ppl_run_options_default(ppl_run_options *o) {
  if (!o) return;
  gc_ensure_thread();
  memset(o, 0, sizeof *o);
  /* the tables' defaults, in the API's terms (one place for each number) */
  for (size_t k = 0; k < sizeof run_fields / sizeof run_fields[0]; k++) {
    const OptSpec *s = engine_option_find(run_fields[k].name);
    if (s) field_put(o, &run_fields[k], s, opt_default(s));
  }
}

/* The store of the options and of the message (no context to tell); NULL
   when out of memory. */
static struct ppl_run_named *run_named(ppl_run_options *o) {
  if (!o->named) {
    GcGuard g;
    if (!gc_guard_enter(&g, setjmp(g.jb))) return NULL;
    o->named = gc_alloc_root(sizeof *o->named);
    gc_guard_leave(&g);
  }
  return o->named;
}

ppl_status ppl_run_set(ppl_run_options *o, const char *name, const char *value) {
  if (!o) return PPL_ERR_USAGE;
  gc_ensure_thread();
  struct ppl_run_named *st = run_named(o);
  if (!st) return PPL_ERR_NOMEM;
  st->msg[0] = 0;
  if (!name || !value) {
    snprintf(st->msg, sizeof st->msg, "ppl_run_set: %s is NULL", !name ? "name" : "value");
    return PPL_ERR_USAGE;
  }
  const OptSpec *s = engine_option_find(name);
  if (!s) {
    snprintf(st->msg, sizeof st->msg, "%s", engine_option_unknown(name));
    return PPL_ERR_USAGE;
  }
  OptValue v;
  if (!opt_parse(s, value, &v, st->msg, sizeof st->msg)) return PPL_ERR_USAGE;
  opt_set_put(&st->set, s, v);
  const RunField *f = run_field(s->name);
  if (f) field_put(o, f, s, v);
  return PPL_OK;
}

ppl_status ppl_run_set_mpi(ppl_run_options *o, const void *comm, const char *split) {
  if (!o) return PPL_ERR_USAGE;
  gc_ensure_thread();
  struct ppl_run_named *st = run_named(o);
  if (!st) return PPL_ERR_NOMEM;
  st->msg[0] = 0;
  static const char *const splits[] = {"auto", "chains", "shard", NULL};
  int k = 0;
  while (split && splits[k] && strcmp(splits[k], split)) k++;
  if (split && !splits[k]) {
    snprintf(st->msg, sizeof st->msg, "ppl_run_set_mpi: split is '%s', expected auto, chains or shard", split);
    return PPL_ERR_USAGE;
  }
  MpiComm *c = mpi_comm_new(comm);
  if (!c) {
    snprintf(st->msg, sizeof st->msg, "ppl_run_set_mpi: %s",
             !mpi_built() ? "this build of ppl has no MPI (meson setup -Dmpi=enabled)"
             : !comm      ? "comm is NULL"
                          : "MPI is not initialised");
    return PPL_ERR_USAGE;
  }
  st->comm = c;
  st->mpi_split = split ? k : 0;
  return PPL_OK;
}

const char *ppl_run_options_errmsg(const ppl_run_options *o) {
  return o && o->named ? o->named->msg : "";
}

void ppl_run_options_free(ppl_run_options *o) {
  if (!o || !o->named) return;
  gc_ensure_thread();
  gc_free_root(o->named);
  o->named = NULL;
}

const char *ppl_engine_name(int i, const char **summary) {
  const EngineVT *const *all = engine_all();
  for (int k = 0; all[k]; k++)
    if (k == i) {
      if (summary) *summary = all[k]->summary;
      return all[k]->name;
    }
  return NULL;
}

int ppl_engine_options(const char *engine, ppl_option_info *out, int max) {
  const EngineVT *e = NULL;
  if (engine && !(e = engine_lookup(engine))) return -1;
  const OptSpec *buf[64];
  int n = engine_options(e, buf, 64);
  static const char *const types[] = {"int", "real", "bool", "enum", "text"};
  for (int k = 0; k < n && k < max && k < 64 && out; k++) {
    const OptSpec *s = buf[k];
    out[k] = (ppl_option_info){.name = s->name, .type = types[s->type], .def = s->def,
                               .choices = s->choices, .imin = s->ilo, .imax = s->ihi,
                               .min = s->rlo, .max = s->rhi, .min_open = s->rlo_open,
                               .arg = s->arg, .help = s->help};
  }
  return n;
}

static bool listed(const char *const *names, const char *name) {
  for (int k = 0; names && names[k]; k++)
    if (!strcmp(names[k], name)) return true;
  return false;
}

/* The options of one run: the typed fields, validated against the tables,
 * then the options given by name, which must be the common ones or eng's
 * (or named in `also`: other engines' options that apply too; NULL: none). */
static ppl_status run_engine_opts(ppl_context *ctx, const ppl_run_options *o, const EngineVT *eng,
                                  const IrAnalysis *an, bool chosen, const char *const *also,
                                  EngineOpts *eo) {
  engine_opts_default(eo);
  eo->threads = ctx->cfg.threads;
  char err[256];
  for (size_t k = 0; k < sizeof run_fields / sizeof run_fields[0]; k++) {
    const OptSpec *s = engine_option_find(run_fields[k].name);
    OptValue v;
    if (!s) continue;
    if (!field_get(o, &run_fields[k], s, &v, err, sizeof err))
      return fail(ctx, DIAG_USAGE, "%s", err);
    engine_opts_put(eo, s, v);
  }
  const OptSet *named = o->named ? &o->named->set : NULL;
  for (int k = 0; named && k < named->n; k++) {
    const OptSpec *s = named->spec[k];
    if (!engine_option_applies(eng, s->name) && !listed(also, s->name))
      return fail(ctx, DIAG_USAGE, "option --%s does not apply to engine '%s'%s (it applies to %s)",
                  s->name, eng->name, chosen ? " chosen by the analysis" : "",
                  engine_option_users(s->name));
    if (!run_field(s->name) || named->val[k].path) /* fields are read above */
      engine_opts_put(eo, s, named->val[k]);
  }
  /* the files the run starts from: --init FILE, --metric FILE */
  const OptSpec *step = engine_option_find("stepsize");
  bool step_given = (named && opt_set_get(named, "stepsize")) || o->stepsize != opt_default(step).r;
  Diag d;
  diag_init(&d);
  if (!start_read(eng, an, step_given, eo, &d)) return fail_diag(ctx, &d);
  return PPL_OK;
}

static const char *engine_names(void) {
  const EngineVT *const *all = engine_all();
  const char *s = "";
  for (int i = 0; all[i]; i++) s = gc_printf("%s%s%s", s, i ? ", " : "", all[i]->name);
  return s;
}

/* The first latent with an improper prior (flat()), or NULL. */
static const IrLatentInfo *improper_latent(const ppl_model *m) {
  const IrAnalysis *an = m->an;
  for (int i = 0; i < an->nlatents; i++) {
    const DistFamily *f = dist_find(&m->ctx->fams, an->latents[i].family);
    if (f && f->improper) return &an->latents[i];
  }
  return NULL;
}

/* Engines that never draw from the prior can run improper priors. */
static bool accepts_improper(const EngineVT *e) { return (e->traits & ENGINE_IMPROPER) != 0; }

/* The file the option "load" names, or NULL. */
static const char *load_path(const ppl_run_options *o) {
  const OptValue *v = o && o->named ? opt_set_get(&o->named->set, "load") : NULL;
  return v ? v->path : NULL;
}

/* The library of learned proposals the option "proposals" names, or NULL. */
static const char *proposals_path(const ppl_run_options *o) {
  const OptValue *v = o && o->named ? opt_set_get(&o->named->set, "proposals") : NULL;
  return v ? v->path : NULL;
}

/* Whether a run of engine e sums the discrete latents out (ir/enum.h): a
   gradient engine on a program whose discrete latents are all enumerated,
   with data loaded and every factor within the limit. */
static bool enum_runs(ppl_model *m, const EngineVT *e) {
  if (!m->an_en) return false;
  if (m->an_en->nlatents == 0) { /* enum_select's prior, or a gradient engine asked for */
    if (e != engine_lookup("prior") && !(e->traits & ENGINE_GRADIENT)) return false;
    if (!m->in) need_data(m);
    return m->in_en != NULL;
  }
  if (!(e->traits & ENGINE_GRADIENT)) return false;
  if (!m->in) need_data(m); /* the factors' sizes come from the data */
  /* no continuous latent left (an HMM with known parameters): a gradient
     engine's draws are then the draws pass's exact, independent ones */
  return m->in_en && engine_fits(e, m->an_en, NULL);
}

/* Why a program with enumerable discrete latents keeps its engine: the
   limit, said after the selector's reason. */
static const char *enum_fallback(const ppl_model *m) {
  if (!m->an_en || m->in_en || !m->in) return "";
  return gc_printf("; the discrete latents %s are not summed out: the largest factor has %ld "
                   "terms, above the limit of %d", enum_names(m->en), m->en->largest,
                   ENUM_FACTOR_LIMIT);
}

/* The selector's choice for the marginalised program.  With no continuous
   latent left (an HMM with known parameters) it is prior's forward run of
   the marginalised program: its draws pass draws the discrete latents
   exactly and independently; its model block only scores. */
#define ENUM_EXACT "no continuous latent is left: each draw is an exact, independent draw of " \
                   "the discrete latents from their posterior (the marginalised program run " \
                   "forward)"
static const EngineVT *enum_select(const ppl_model *m, const char **why) {
  if (m->an_en->nlatents > 0) return engine_select(m->an_en, why);
  *why = gc_printf("%s — %s", "prior", ENUM_EXACT);
  return engine_lookup("prior");
}

/* The engine line of a run of the marginalised program, the selector's reason
   (rest) after what was summed out. */
static const char *enum_reason(const ppl_model *m, const EngineVT *e, const char *rest) {
  return gc_printf("%s — the discrete latents %s are summed out by enumeration (largest factor "
                   "%s); %s", e->name, enum_names(m->en), enum_largest_text(m->en), rest);
}

/* The engine of a run (load: its --load file, or NULL; proposals: its
   library of learned proposals, NULL the default) and why; *en: the run is
   of the marginalised program (enum_runs). */
static ppl_status choose_engine(ppl_model *m, const char *requested, const char *load,
                                const char *proposals, const EngineVT **eng, const char **why,
                                bool *en) {
  const IrLatentInfo *imp = improper_latent(m);
  *en = false;
  if ((!requested && load) || (requested && !strcmp(requested, engine_amortized.name))) {
    if (!load) return fail(m->ctx, DIAG_USAGE, "%s", AMORTIZED_NEEDS_LOAD);
    Diag d;
    diag_init(&d);
    const char *reason;
    if (!(*eng = amortized_select(m->ir, load, &reason, &d))) return fail_diag(m->ctx, &d);
    *why = requested ? gc_printf("%s — chosen with --engine", engine_amortized.name) : reason;
    return PPL_OK;
  }
  if (requested) {
    const EngineVT *e = engine_lookup(requested);
    if (!e)
      return fail(m->ctx, DIAG_USAGE, "unknown engine '%s' (available: %s)", requested,
                  engine_names());
    const char *why_not = NULL;
    if ((e->traits & ENGINE_GRADIENT) && enum_runs(m, e)) {
      *eng = e;
      *en = true;
      if (m->an_en->nlatents == 0) {
        *eng = engine_lookup("prior");
        *why = gc_printf("%s — --engine %s: the discrete latents %s are summed out by "
                         "enumeration (largest factor %s) and %s", "prior", e->name,
                         enum_names(m->en), enum_largest_text(m->en), ENUM_EXACT);
        return PPL_OK;
      }
      *why = gc_printf("%s — chosen with --engine; the discrete latents %s are summed out by "
                       "enumeration (largest factor %s)", e->name, enum_names(m->en),
                       enum_largest_text(m->en));
      return PPL_OK;
    }
    if (!engine_fits(e, m->an, &why_not))
      return fail(m->ctx, DIAG_USAGE, "engine '%s' cannot run this program: %s", e->name, why_not);
    if (imp && !accepts_improper(e))
      return fail(m->ctx, DIAG_USAGE,
                  "engine '%s' draws from the prior, but latent '%s' has the improper prior %s() "
                  "(%s:%d); use nuts or mh",
                  e->name, imp->name, imp->family, imp->pos.file ? imp->pos.file : m->file,
                  imp->pos.line);
    *eng = e;
    *why = gc_printf("%s — chosen with --engine", e->name);
    return PPL_OK;
  }
  const char *reason = NULL;
  const EngineVT *e = NULL;
  if (m->an_en && (e = enum_select(m, &reason)) != NULL && enum_runs(m, e)) {
    const char *dash = strstr(reason, " — ");
    *eng = e;
    *en = true;
    *why = enum_reason(m, e, dash ? dash + strlen(" — ") : reason);
    return PPL_OK;
  }
  e = engine_select(m->an, &reason);
  if (!e) return fail(m->ctx, DIAG_INTERNAL, "no engine can run this program");
  /* a discrete or dynamic program whose motifs all have learned proposals
     in the library (--proposals DIR, or the default one) */
  if ((m->an->has_discrete || !m->an->fixed_structure) && m->in &&
      !m->an->has_lm) {
    Diag d;
    diag_init(&d);
    const char *lw;
    if (lmh_prefers(m->in, proposals, &lw, &d)) e = &engine_lmh, reason = lw;
    else if (diag_failed(&d)) return fail_diag(m->ctx, &d);
  }
  reason = gc_printf("%s%s", reason, enum_fallback(m));
  if (imp && !accepts_improper(e)) {
    e = engine_lookup("mh");
    reason = gc_printf("mh — latent '%s' has an improper prior, which %s cannot sample", imp->name,
                       reason);
  }
  *eng = e;
  *why = reason;
  return PPL_OK;
}

/* ppl_model_engine's and ppl_run_engine's answer. */
static ppl_status engine_answer(ppl_model *m, const char *requested, const char *load,
                                const char *proposals, const char **name, const char **why) {
  gc_ensure_thread();
  const EngineVT *e;
  const char *w;
  bool en;
  ppl_status s = choose_engine(m, requested, load, proposals, &e, &w, &en);
  if (s != PPL_OK) return s;
  if (name) *name = e->name;
  if (why) *why = w;
  return ok(m->ctx);
}

static ppl_status model_engine_(ppl_model *m, const char *requested, const char **name,
                            const char **why) {
  return engine_answer(m, requested, NULL, NULL, name, why);
}

/* Every rank runs every chain: the gradient engines split the rows of the
   log density (ld_shard.h) when the program has rows to split. */
static const char *run_mpi_shard(const ppl_model *m, const EngineVT *eng, int R) {
  const char *all = gc_printf("each of the %d ranks runs every chain in step; rank 0 writes", R);
  if (eng == &engine_svi)
    return gc_printf("MPI: each step's gradient is split over %d rank%s in fixed blocks (--grad-"
                     "samples times --grad-blocks of the minibatch, summed in block order), the "
                     "chains one after another", R, R == 1 ? "" : "s");
  if (!(eng->traits & ENGINE_GRADIENT) || eng == &engine_amortized) /* no split log density */
    return gc_printf("MPI: %s", all);
  const IrShard *sh = m->an->fixed_structure && m->an->all_continuous ? ir_shard_plan(m->ir) : NULL;
  if (!sh || sh->why)
    return gc_printf("MPI: %s (no rows split: %s)", all,
                     sh ? sh->why : "the program has no fixed set of continuous latents");
  const char *what = "";
  for (int k = 0; k < sh->nstmts; k++)
    what = gc_printf("%s%s%d:%d %s", what, k ? ", " : "", sh->pos[k].line, sh->pos[k].col, sh->what[k]);
  return gc_printf("MPI: each chain's log density is split over %d rank%s by the rows of %s "
                   "(%s; in at most %d blocks, summed in order), the chains one after another",
                   R, R == 1 ? "" : "s", sh->size_name, what, LD_SHARD_BLOCKS);
}

/* Every rank runs every chain: smc splits each chain's particles when they
   run compiled (smc_mpi.h), the gradient engines the log density's rows. */
static const char *run_mpi_split(const ppl_model *m, const ppl_run_options *o, const EngineVT *eng,
                                 const DriverOpts *d_o, int R) {
  const char *how = NULL;
  EngineOpts eo;
  if (eng == &engine_smc && m->in &&
      (d_o ? (eo = d_o->eng, true)
           : run_engine_opts(m->ctx, o, eng, m->an, !o->engine, NULL, &eo) == PPL_OK))
    how = smcm_plan(m->in, &eo, R);
  return how ? how : run_mpi_shard(m, eng, R);
}

/* MPI (ppl_run_set_mpi): how the ranks share the run, said after the
 * engine's reason; d_o (NULL: only the words) gets the communicator.
 * Chains across ranks when there are at least as many chains as ranks
 * (their draws come back whole), else every rank runs every chain in step
 * and the engine splits its work. */
static void run_mpi(const ppl_model *m, const ppl_run_options *o, const EngineVT *eng,
                    const char **why, DriverOpts *d_o) {
  const MpiComm *c = o && o->named ? o->named->comm : NULL;
  int R = mpi_size(c), split = o && o->named ? o->named->mpi_split : 0;
  if (!c) return;
  int chains = d_o ? d_o->eng.chains : o->chains;
  /* the driver sends draws and CSV rows between ranks, not the choices
     files (--choices, and dynamic programs' nested latents), the metric
     files nor the variational fits: such runs go every chain on every rank */
  const OptValue *ch = opt_set_get(&o->named->set, "choices");
  const OptValue *sm = opt_set_get(&o->named->set, "save-metric");
  bool by_chain = (split == 1 || (split == 0 && chains >= R)) && !eng->vi_report &&
                  !(ch && ch->i) && !(sm && sm->i) && m->an->fixed_structure;
  const char *how =
      R == 1 && by_chain ? "MPI: 1 rank"
      : by_chain ? gc_printf("MPI: %d chain%s over %d ranks (chain c on rank c mod %d)", chains,
                             chains == 1 ? "" : "s", R, R)
                 : run_mpi_split(m, o, eng, d_o, R);
  *why = gc_printf("%s; %s", *why, how);
  if (d_o) {
    d_o->eng.comm = c;
    d_o->mpi_chains = by_chain;
    d_o->engine_reason = *why;
  }
}

/* Under MPI a rank that cannot start stops every rank (the others would
   wait for it in the run's first exchange). */
static ppl_status run_mpi_agree(ppl_model *m, const ppl_run_options *o, ppl_status s) {
  const MpiComm *c = o && o->named ? o->named->comm : NULL;
  bool bad = s != PPL_OK;
  if (!c || !mpi_allreduce_or(c, &bad) || !bad || s != PPL_OK) return s;
  return fail(m->ctx, DIAG_USAGE, "MPI: another rank could not start the run");
}

/* The engine and the driver's options of a run, every option validated. */
static ppl_status run_prepare(ppl_model *m, const ppl_run_options *o, const EngineVT **eng,
                              const char **why, DriverOpts *d_o, bool *en) {
  ppl_status s = choose_engine(m, o->engine, load_path(o), proposals_path(o), eng, why, en);
  if (s != PPL_OK) return s;
  driver_opts_default(d_o);
  /* the marginalised program run forward under prior (no continuous latent
     left) takes the gradient engines' options: --enum-marginals */
  const EngineVT *oe = *en && !((*eng)->traits & ENGINE_GRADIENT) ? engine_lookup("nuts") : *eng;
  if ((s = run_engine_opts(m->ctx, o, oe, *en ? m->an_en : m->an, !o->engine, NULL,
                           &d_o->eng)) != PPL_OK)
    return s;
  d_o->output_csv = o->output_csv;
  d_o->summary_json = o->summary_json;
  d_o->include = o->include;
  d_o->exclude = o->exclude;
  d_o->summary_out = NULL;
  /* redrawn in place only on a terminal; plain lines when asked for them or
     when stderr is a file or a pipe */
  d_o->progress = o->progress == PPL_PROGRESS_LINES || (o->progress && !isatty(2)) ? PROGRESS_LINES
                  : o->progress                                                   ? PROGRESS_TERMINAL
                                                                                  : PROGRESS_OFF;
  d_o->threads = d_o->eng.threads; /* particle engines split it with the chains */
  if (m->an->has_lm) d_o->threads = d_o->eng.threads = 1; /* a backend serves one thread */
  d_o->model_file = m->file;
  d_o->model_name = m->file;
  d_o->data_file = m->data_file;
  d_o->engine_reason = *why;
  d_o->interrupt = &m->ctx->interrupt;
  run_mpi(m, o, *eng, why, d_o);
  /* outputs that are inputs or cannot be written, draws that cannot fit
     (rank 0 writes them) */
  Diag d;
  diag_init(&d);
  if (mpi_rank(d_o->eng.comm) == 0 && !driver_check_outputs(*eng, d_o, m->ir, m->ir->noutputs, m->ir->outputs, &d)) return fail_diag(m->ctx, &d);
  return PPL_OK;
}

static ppl_status run_check_(ppl_model *m, const ppl_run_options *o) {
  if (!m) return PPL_ERR_USAGE;
  if (!o) return fail(m->ctx, DIAG_USAGE, "ppl_run_check: o is NULL");
  gc_ensure_thread();
  const EngineVT *eng;
  const char *why;
  DriverOpts d_o;
  bool en;
  ppl_status s = run_prepare(m, o, &eng, &why, &d_o, &en);
  return s != PPL_OK ? s : ok(m->ctx);
}

static ppl_status run_engine_(ppl_model *m, const ppl_run_options *o, const char **name,
                              const char **why) {
  ppl_status s = engine_answer(m, o ? o->engine : NULL, load_path(o), proposals_path(o), name, why);
  if (s == PPL_OK && why && *why && name && *name) run_mpi(m, o, engine_lookup(*name), why, NULL);
  return s;
}

/* Options of a run that one fit has no use for. */
static const char *const train_refused[] = {"chains", "draws", "warmup", "thin",
                                            "save-params", "load-params", "psis-resample",
                                            "save-warmup", "save-metric", "choices", NULL};

static ppl_status train_(ppl_model *m, const ppl_run_options *o, const char *save,
                         ppl_train_info *info) {
  if (!save || !*save) return fail(m->ctx, DIAG_USAGE, "ppl_train: save_path is %s",
                                   save ? "empty" : "NULL");
  ppl_run_options def;
  if (!o) {
    ppl_run_options_default(&def);
    o = &def;
  }
  const char *name = o->engine ? o->engine : engine_svi.name;
  const EngineVT *eng = engine_lookup(name);
  bool amortize = eng == &engine_amortized;
  if (!eng || (!amortize && strcmp(name, engine_svi.name) != 0))
    return fail(m->ctx, DIAG_USAGE, "ppl_train trains with svi (a program with a guide block) "
                "or amortized (whole-program amortization), not '%s'", name);
  const char *why_not = NULL;
  if (!amortize && !m->an->has_guide && m->an->nlatents > 0)
    return fail(m->ctx, DIAG_USAGE, "train: the program has latents but no guide block: write a "
                "guide whose encoders draw them (docs/language.md, \"guide\"), or train the whole "
                "program with --amortize");
  if (!amortize && !engine_fits(eng, m->an, &why_not))
    return fail(m->ctx, DIAG_USAGE, "train: svi cannot train this program: %s", why_not);
  const OptSet *named = o->named ? &o->named->set : NULL;
  for (int k = 0; train_refused[k]; k++)
    if (opt_set_get(named, train_refused[k]))
      return fail(m->ctx, DIAG_USAGE, "train: --%s does not apply (training makes one fit "
                  "and writes no draws)", train_refused[k]);
  if (o->output_csv || o->summary_json || o->include || o->exclude)
    return fail(m->ctx, DIAG_USAGE, "train writes no draws: --%s does not apply",
                o->output_csv ? "output" : o->summary_json ? "summary"
                : o->include ? "include" : "exclude");
  DriverOpts d_o;
  driver_opts_default(&d_o);
  static const char *const svi_extra[] = {"load", "epochs", NULL}; /* resume; npe's entry */
  if (amortize && load_path(o))
    return fail(m->ctx, DIAG_USAGE, "train --amortize: --load does not apply (it trains its "
                "networks from the start)");
  ppl_status s = run_engine_opts(m->ctx, o, eng, m->an, false,
                                 amortize ? train_npe_borrowed : svi_extra, &d_o.eng);
  if (s != PPL_OK) return s;
  d_o.model_file = m->file;
  d_o.data_file = m->data_file;
  Diag d;
  diag_init(&d);
  if (!driver_check_output_file(&d_o, save, "params file", &d)) return fail_diag(m->ctx, &d);
  if (!amortize && (s = need_data(m)) != PPL_OK) return s;
  d_o.eng.chains = 1;
  d_o.eng.interrupt = &m->ctx->interrupt;
  /* under MPI both train data-parallel: each rank the gradient of its blocks
     of every step (svi.c; npe.c, which shares the simulations too), rank 0
     the file and the progress */
  const MpiComm *comm = o->named ? o->named->comm : NULL;
  d_o.eng.comm = comm;
  TrainOpts t = {.save = save, .amortize = amortize, .resume = load_path(o),
                 .data = m->src ? m->src : data_empty(), .progress_out = stderr};
  t.progress = o->progress == PPL_PROGRESS_LINES || (o->progress && !isatty(2)) ? PROGRESS_LINES
               : o->progress                                                   ? PROGRESS_TERMINAL
                                                                               : PROGRESS_OFF;
  if (mpi_rank(comm) != 0) t.progress = PROGRESS_OFF;
  TrainInfo ti;
  bool done = train_run(m->ir, m->in, &d_o.eng, &t, &ti, &d);
  atomic_store(&m->ctx->interrupt, 0);
  if (!done) return fail_diag(m->ctx, &d);
  if (info)
    *info = (ppl_train_info){.method = ti.method, .steps = ti.steps, .epochs = ti.epochs,
                             .examples = ti.examples, .elbo = ti.elbo, .loss = ti.loss,
                             .seconds = ti.seconds, .converged = ti.converged,
                             .interrupted = ti.interrupted};
  return ok(m->ctx);
}

/* ---- a run's language models ------------------------------------------ */

/* The LmSet of one run: the `lm` options' backends, opened for it, then the
   context's registered ones whose names no option takes. */
typedef struct LmRun {
  bool bound;
  LmSet set;
  int nopen; /* set.b[0..nopen) are opened here, closed by lm_run_end */
} LmRun;

static void lm_run_free(LmRun *r) {
  for (int i = 0; i < r->nopen; i++) lm_close(r->set.b[i]);
  free(r->set.b);
  memset(r, 0, sizeof *r);
}

/* "NAME=SPEC" -> NAME (GC memory) and SPEC; a spec alone has the name "". */
static const char *lm_spec_name(const char *text, const char **spec) {
  const char *eq = strchr(text, '=');
  const char *colon = strchr(text, ':');
  if (!eq || (colon && colon < eq)) { /* "ngram:f.txt,order=3" has no name */
    *spec = text;
    return "";
  }
  *spec = eq + 1;
  return gc_strndup(text, (size_t)(eq - text));
}

static ppl_status lm_run_begin(ppl_model *m, const ppl_run_options *o, LmRun *r) {
  memset(r, 0, sizeof *r);
  if (!m->an->has_lm) return PPL_OK; /* other programs open nothing, whatever --lm says */
  ppl_context *ctx = m->ctx;
  const OptSet *named = o->named ? &o->named->set : NULL;
  int cap = ctx->lm.n + (named ? named->n : 0) + 1;
  /* GC memory: the names of --lm NAME=SPEC are GC strings, which a malloc'd
     array would not keep alive */
  r->set.names = gc_alloc(sizeof *r->set.names * (size_t)cap);
  r->set.b = calloc((size_t)cap, sizeof *r->set.b);
  if (!r->set.names || !r->set.b) {
    lm_run_free(r);
    return fail(ctx, DIAG_NOMEM, "ppl_run: out of memory");
  }
  char err[512];
  for (int k = 0; named && k < named->n; k++) {
    if (strcmp(named->spec[k]->name, "lm") || !named->val[k].path) continue;
    const char *spec, *name = lm_spec_name(named->val[k].path, &spec);
    if (*name && !valid_name(name)) {
      lm_run_free(r);
      return fail(ctx, DIAG_USAGE, "--lm %s: '%s' is not a model name (letters, digits and _)",
                  named->val[k].path, name);
    }
    if (lm_set_find(&r->set, name)) {
      lm_run_free(r);
      return fail(ctx, DIAG_USAGE, "--lm: %s given twice",
                  *name ? gc_printf("the model '%s' is", name) : "the default model is");
    }
    LmBackend *b;
    if (!lm_open(spec, &b, err, sizeof err)) {
      lm_run_free(r);
      return fail(ctx, DIAG_USAGE, "%s", err);
    }
    r->set.names[r->set.n] = name;
    r->set.b[r->set.n++] = b;
    r->nopen++;
  }
  for (int i = 0; i < ctx->lm.n; i++)
    if (!lm_set_find(&r->set, ctx->lm.names[i])) {
      r->set.names[r->set.n] = ctx->lm.names[i];
      r->set.b[r->set.n++] = ctx->lm.b[i];
    }
  if (r->set.n == 0) {
    lm_run_free(r);
    Diag d;
    diag_init(&d);
    diag_error(&d, DIAG_USAGE, m->an->lm_pos, "%s", lm_families_unbound_msg);
    return fail_diag(ctx, &d);
  }
  bool idle = false;
  if (!atomic_compare_exchange_strong(&ctx->lm_busy, &idle, true)) {
    lm_run_free(r);
    return fail(ctx, DIAG_USAGE, "ppl_run: this context is running another program that draws "
                                 "from a language model (one at a time per context)");
  }
  lm_families_bind(ctx->lmf, &r->set);
  r->bound = true;
  return PPL_OK;
}

static void lm_run_end(ppl_model *m, LmRun *r) {
  if (!r->bound) return;
  lm_families_bind(m->ctx->lmf, NULL);
  atomic_store(&m->ctx->lm_busy, false);
  lm_run_free(r);
}

static ppl_status run_(ppl_model *m, const ppl_run_options *o, ppl_result **out) {
  if (!m) return PPL_ERR_USAGE;
  if (!out) return fail(m->ctx, DIAG_USAGE, "ppl_run: out is NULL");
  *out = NULL;
  gc_ensure_thread();
  ppl_run_options def;
  if (!o) {
    ppl_run_options_default(&def);
    o = &def;
  }
  const EngineVT *eng;
  const char *why;
  DriverOpts d_o;
  bool en;
  ppl_status s = run_prepare(m, o, &eng, &why, &d_o, &en);
  if (s == PPL_OK) s = need_data(m);
  if ((s = run_mpi_agree(m, o, s)) != PPL_OK) return s;
  LmRun lr;
  if ((s = lm_run_begin(m, o, &lr)) != PPL_OK) return s;
  Diag d;
  diag_init(&d);
  RunResult *rr = NULL;
  const Interp *in = en ? m->in_en : m->in;
  if (en && engine_opt_bool(&d_o.eng, "enum-marginals")) { /* the pr_ columns */
    if (!m->in_marg) {
      Interp *im = interp_new(m->en->prog_marg, print_out(m));
      if (!interp_load_data(im, m->en_src, &d)) return fail_diag(m->ctx, &d);
      m->in_marg = im;
    }
    in = m->in_marg;
  }
  bool done = driver_run(in, eng, &d_o, &rr, &d);
  lm_run_end(m, &lr);
  atomic_store(&m->ctx->interrupt, 0);
  if (!done) {
    if (d.code == DIAG_NOMEM) m->retired = true; /* a chain's locks may be held */
    return fail_diag(m->ctx, &d);
  }
  ppl_result *r = gc_alloc_root(sizeof *r);
  r->ctx = m->ctx;
  r->rr = rr;
  r->engine = eng->name;
  r->reason = why;
  *out = r;
  return ok(m->ctx);
}

void ppl_result_free(ppl_result *r) {
  if (!r) return;
  gc_ensure_thread();
  gc_free_root(r);
}

const char *ppl_result_engine(const ppl_result *r) { return r ? r->engine : NULL; }
const char *ppl_result_engine_reason(const ppl_result *r) { return r ? r->reason : NULL; }
const char *ppl_result_backend(const ppl_result *r) { return r ? rr_backend(r->rr) : NULL; }
int ppl_result_num_chains(const ppl_result *r) { return r ? rr_num_chains(r->rr) : 0; }
int ppl_result_num_draws(const ppl_result *r) { return r ? rr_num_draws(r->rr) : 0; }
int ppl_result_num_columns(const ppl_result *r) { return r ? rr_num_columns(r->rr) : 0; }

const char *ppl_result_column_name(const ppl_result *r, int col) {
  if (!r || col < 0 || col >= rr_num_columns(r->rr)) return NULL;
  return rr_column_name(r->rr, col);
}

const char *ppl_result_column_label(const ppl_result *r, int col) {
  if (!r || col < 0 || col >= rr_num_columns(r->rr)) return NULL;
  return rr_column_label(r->rr, col);
}

/* "theta[1,2]" -> "theta.1.2" */
static void summary_to_csv_name(const char *in, char *out, size_t n) {
  size_t j = 0;
  for (const char *p = in; *p && j + 1 < n; p++) {
    if (*p == '[' || *p == ',') out[j++] = '.';
    else if (*p != ']' && *p != ' ') out[j++] = *p;
  }
  out[j] = 0;
}

int ppl_result_column_index(const ppl_result *r, const char *name) {
  if (!r || !name) return -1;
  char buf[512];
  summary_to_csv_name(name, buf, sizeof buf);
  for (int i = 0; i < rr_num_columns(r->rr); i++)
    if (!strcmp(rr_column_name(r->rr, i), buf)) return i;
  return -1;
}

double ppl_result_draw(const ppl_result *r, int chain, int draw, int col) {
  if (!r || chain < 0 || chain >= rr_num_chains(r->rr) || draw < 0 || draw >= rr_num_draws(r->rr) ||
      col < 0 || col >= rr_num_columns(r->rr))
    return NAN;
  return rr_draw(r->rr, chain, draw, col);
}

ppl_status ppl_result_summary(const ppl_result *r, int col, ppl_summary *out) {
  if (!r) return PPL_ERR_USAGE;
  if (!out) return fail(r->ctx, DIAG_USAGE, "ppl_result_summary: out is NULL");
  if (col < 0 || col >= rr_num_columns(r->rr))
    return fail(r->ctx, DIAG_USAGE, "ppl_result_summary: no column %d (the result has %d)", col,
                rr_num_columns(r->rr));
  const SummaryStats *s = rr_summary(r->rr, col);
  *out = (ppl_summary){s->mean, s->sd, s->mcse, s->q5, s->q50, s->q95, s->ess_bulk, s->ess_tail, s->rhat};
  return ok(r->ctx);
}

const char *ppl_result_summary_text(const ppl_result *r) { return r ? rr_summary_text(r->rr) : NULL; }
int ppl_result_interrupted(const ppl_result *r) { return r && rr_interrupted(r->rr); }
const char *ppl_result_choices_file(const ppl_result *r, int chain) {
  return r ? rr_choices_path(r->rr, chain) : NULL;
}

int ppl_result_num_warnings(const ppl_result *r) { return r ? rr_num_warnings(r->rr) : 0; }

const char *ppl_result_warning(const ppl_result *r, int i, const char **kind,
                               const char **advice) {
  const RunWarning *w = r ? rr_warning(r->rr, i) : NULL;
  if (kind) *kind = w ? w->kind : NULL;
  if (advice) *advice = w ? w->advice : NULL;
  return w ? w->message : NULL;
}

const char *ppl_result_warning_variable(const ppl_result *r, int i, int k) {
  const RunWarning *w = r ? rr_warning(r->rr, i) : NULL;
  return w && k >= 0 && k < w->nvars ? w->vars[k] : NULL;
}

const char *ppl_result_warnings_text(const ppl_result *r) {
  return r ? rr_warnings_text(r->rr) : NULL;
}

ppl_status ppl_result_log_evidence(const ppl_result *r, double *estimate, double *se) {
  if (!r) return PPL_ERR_USAGE;
  double e, s;
  if (!rr_log_evidence(r->rr, &e, &s))
    return fail(r->ctx, DIAG_USAGE, "engine '%s' does not estimate the log evidence", r->engine);
  if (estimate) *estimate = e;
  if (se) *se = s;
  return ok(r->ctx);
}

/* ---- draws read back from CSV files ------------------------------------ */

static ppl_status result_from_csv_(ppl_context *ctx, int nfiles, const char *const *paths,
                                   ppl_result **out) {
  if (!out) return fail(ctx, DIAG_USAGE, "ppl_result_from_csv: out is NULL");
  *out = NULL;
  if (nfiles < 1 || !paths) return fail(ctx, DIAG_USAGE, "ppl_result_from_csv: no files");
  CsvFile *files = gc_alloc(sizeof(CsvFile) * (size_t)nfiles);
  Diag d;
  diag_init(&d);
  for (int i = 0; i < nfiles; i++)
    if (!paths[i]) return fail(ctx, DIAG_USAGE, "ppl_result_from_csv: paths[%d] is NULL", i);
    else if (!csvr_read(paths[i], &files[i], &d)) return fail_diag(ctx, &d);
  DriverDraws dd;
  if (!csvr_draws(nfiles, files, &dd, &d)) return fail_diag(ctx, &d);
  ppl_result *r = gc_alloc_root(sizeof *r);
  r->ctx = ctx;
  r->rr = driver_result(&dd);
  r->engine = dd.engine;
  r->reason = dd.engine_reason;
  *out = r;
  return ok(ctx);
}

static ppl_status result_write_summary_(const ppl_result *r, const char *path) {
  if (!path) return fail(r->ctx, DIAG_USAGE, "ppl_result_write_summary: path is NULL");
  Diag d;
  diag_init(&d);
  return rr_write_summary_json(r->rr, path, &d) ? ok(r->ctx) : fail_diag(r->ctx, &d);
}

static ppl_status generate_(ppl_model *m, int nfiles, const char *const *paths, const char *output,
                            uint64_t seed) {
  if (nfiles < 1 || !paths) return fail(m->ctx, DIAG_USAGE, "ppl_generate: no draws files");
  for (int i = 0; i < nfiles; i++)
    if (!paths[i]) return fail(m->ctx, DIAG_USAGE, "ppl_generate: paths[%d] is NULL", i);
  ppl_status s = need_data(m);
  if (s != PPL_OK) return s;
  /* "dir/coin.ppl" -> "coin", as the run's CSV names the model */
  const char *base = m->file ? strrchr(m->file, '/') : NULL;
  base = base ? base + 1 : m->file;
  const char *dot = base ? strrchr(base, '.') : NULL;
  const char *name = base && dot && dot != base ? gc_strndup(base, (size_t)(dot - base)) : base;
  Diag d;
  diag_init(&d);
  return gen_quantities(m->in, nfiles, paths, output, seed, name, &d) ? ok(m->ctx) : fail_diag(m->ctx, &d);
}

/* ---- guarded entry points ----------------------------------------------- */

/* An allocation failed under the guard of a call on ctx (and model m, which
 * is retired: the jump may have left one of its locks held). */
static ppl_status out_of_memory(ppl_context *ctx, ppl_model *m, size_t bytes) {
  if (m) m->retired = true;
  return fail(ctx, DIAG_NOMEM, "out of memory (allocating %zu bytes)", bytes);
}

static ppl_status retired(ppl_model *m, const char *fn) {
  return fail(m->ctx, DIAG_USAGE,
              "%s: the model ran out of memory in an earlier call; free it and compile it again", fn);
}

/* Run CALL (a ppl_status expression) under an out-of-memory guard; ctx and
 * m as for out_of_memory.  The guard is the function's only state across
 * setjmp, and its bytes are read through a volatile lvalue. */
#define GUARDED(ctx, m, CALL)                                                    \
  do {                                                                           \
    GcGuard g_;                                                                  \
    gc_ensure_thread();                                                          \
    if (!gc_guard_enter(&g_, setjmp(g_.jb)))                                     \
      return out_of_memory((ctx), (m), *(volatile size_t *)&g_.bytes);           \
    ppl_status s_ = (CALL);                                                      \
    gc_guard_leave(&g_);                                                         \
    return s_;                                                                   \
  } while (0)

/* The model-level form: refuses a retired model first. */
#define GUARDED_MODEL(m, fn, CALL)                                               \
  do {                                                                           \
    if (!(m)) return PPL_ERR_USAGE;                                              \
    if ((m)->retired) return retired((m), fn);                                   \
    GUARDED((m)->ctx, (m), CALL);                                                \
  } while (0)

ppl_status ppl_register_function(ppl_context *ctx, const char *name, int arity, ppl_host_fn fn,
                                 void *ud) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, register_function_(ctx, name, arity, fn, ud));
}

ppl_status ppl_register_function_ex(ppl_context *ctx, const char *name, const char *args,
                                    ppl_host_grad_fn fn, int has_gradient, void *ud) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, register_function_ex_(ctx, name, args, fn, has_gradient, ud));
}

ppl_status ppl_register_string_function(ppl_context *ctx, const char *name, int arity,
                                        ppl_host_str_fn fn, void *ud) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, register_string_function_(ctx, name, arity, fn, ud));
}

ppl_status ppl_register_family(ppl_context *ctx, const ppl_family *fam) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, register_family_(ctx, fam));
}

/* ---- language-model backends ------------------------------------------ */

/* The host's struct is copied into the internal one as it is: the two must
   agree member by member. */
#define LM_SAME(m)                                                                                 \
  _Static_assert(offsetof(ppl_lm_backend, m) == offsetof(LmBackend, m) &&                          \
                     sizeof(((ppl_lm_backend *)0)->m) == sizeof(((LmBackend *)0)->m),              \
                 "ppl_lm_backend." #m " differs from LmBackend." #m)
LM_SAME(name);
LM_SAME(self);
LM_SAME(n_vocab);
LM_SAME(eos);
LM_SAME(tokenize);
LM_SAME(token_text);
LM_SAME(start);
LM_SAME(fork);
LM_SAME(release);
LM_SAME(eval);
LM_SAME(score);
LM_SAME(destroy);
_Static_assert(sizeof(ppl_lm_backend) == sizeof(LmBackend), "ppl_lm_backend differs from LmBackend");

ppl_status ppl_register_lm(ppl_context *ctx, const char *name, const ppl_lm_backend *lm) {
  if (!ctx) return PPL_ERR_USAGE;
  if (!name) return fail(ctx, DIAG_USAGE, "ppl_register_lm: name is NULL");
  if (*name && !valid_name(name)) return fail(ctx, DIAG_USAGE, "ppl_register_lm: invalid model name '%s'", name);
  const char *shown = *name ? name : "(the default)";
  if (!lm) return fail(ctx, DIAG_USAGE, "ppl_register_lm: '%s': lm is NULL", shown);
  if (!lm->tokenize || !lm->token_text || !lm->start || !lm->fork || !lm->release || !lm->eval)
    return fail(ctx, DIAG_USAGE,
                "ppl_register_lm: '%s' needs tokenize, token_text, start, fork, release and eval", shown);
  if (lm->n_vocab < 1 || lm->eos < -1 || lm->eos >= lm->n_vocab)
    return fail(ctx, DIAG_USAGE, "ppl_register_lm: '%s' has n_vocab %d and eos %d (want n_vocab > 0, -1 <= eos < n_vocab)",
                shown, lm->n_vocab, (int)lm->eos);
  if (lm_set_find(&ctx->lm, name))
    return fail(ctx, DIAG_USAGE, "ppl_register_lm: '%s' is already registered", shown);
  const char *bname = lm->name ? lm->name : *name ? name : "host language model";
  LmBackend *b = malloc(sizeof *b);
  char *nm = strdup(name), *bn = strdup(bname);
  const char **names = realloc(ctx->lm.names, sizeof *names * (size_t)(ctx->lm.n + 1));
  if (names) ctx->lm.names = names;
  LmBackend **bs = realloc(ctx->lm.b, sizeof *bs * (size_t)(ctx->lm.n + 1));
  if (bs) ctx->lm.b = bs;
  if (!b || !nm || !bn || !names || !bs) {
    free(b);
    free(nm);
    free(bn);
    return fail(ctx, DIAG_NOMEM, "ppl_register_lm: out of memory");
  }
  memcpy(b, lm, sizeof *b);
  b->name = bn;
  ctx->lm.names[ctx->lm.n] = nm;
  ctx->lm.b[ctx->lm.n++] = b;
  return ok(ctx);
}

ppl_status ppl_compile_file(ppl_context *ctx, const char *path, ppl_model **out) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, compile_file_(ctx, path, out));
}

ppl_status ppl_compile_string(ppl_context *ctx, const char *source, const char *name,
                              ppl_model **out) {
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, compile_string_(ctx, source, name, out));
}

ppl_status ppl_set_data_json(ppl_model *m, const char *json, const char *name) {
  GUARDED_MODEL(m, "ppl_set_data_json", set_data_json_(m, json, name));
}

ppl_status ppl_set_data_file(ppl_model *m, const char *path) {
  GUARDED_MODEL(m, "ppl_set_data_file", set_data_file_(m, path));
}

ppl_status ppl_data_commit(ppl_model *m) { GUARDED_MODEL(m, "ppl_data_commit", data_commit_(m)); }

ppl_status ppl_num_unconstrained(ppl_model *m, size_t *n) {
  GUARDED_MODEL(m, "ppl_num_unconstrained", num_unconstrained_(m, n));
}

ppl_status ppl_num_constrained(ppl_model *m, size_t *n) {
  GUARDED_MODEL(m, "ppl_num_constrained", num_constrained_(m, n));
}

ppl_status ppl_log_density(ppl_model *m, const double *theta, size_t n, double *lp) {
  if (lp) *lp = NAN;
  GUARDED_MODEL(m, "ppl_log_density", log_density(m, theta, n, lp));
}

ppl_status ppl_log_density_gradient(ppl_model *m, const double *theta, size_t n, double *lp,
                                    double *grad) {
  if (lp) *lp = NAN;
  GUARDED_MODEL(m, "ppl_log_density_gradient", log_density_gradient(m, theta, n, lp, grad));
}

ppl_status ppl_constrain(ppl_model *m, const double *theta, double *x) {
  GUARDED_MODEL(m, "ppl_constrain", constrain_(m, theta, x));
}

ppl_status ppl_unconstrain(ppl_model *m, const double *x, double *theta) {
  GUARDED_MODEL(m, "ppl_unconstrain", unconstrain_(m, x, theta));
}

ppl_status ppl_model_engine(ppl_model *m, const char *requested, const char **name,
                            const char **why) {
  GUARDED_MODEL(m, "ppl_model_engine", model_engine_(m, requested, name, why));
}

ppl_status ppl_run_check(ppl_model *m, const ppl_run_options *o) {
  GUARDED_MODEL(m, "ppl_run_check", run_check_(m, o));
}

ppl_status ppl_run_engine(ppl_model *m, const ppl_run_options *o, const char **name,
                          const char **why) {
  GUARDED_MODEL(m, "ppl_run_engine", run_engine_(m, o, name, why));
}

ppl_status ppl_train(ppl_model *m, const ppl_run_options *o, const char *save_path,
                     ppl_train_info *info) {
  GUARDED_MODEL(m, "ppl_train", train_(m, o, save_path, info));
}

ppl_status ppl_run(ppl_model *m, const ppl_run_options *o, ppl_result **out) {
  if (out) *out = NULL;
  GUARDED_MODEL(m, "ppl_run", run_(m, o, out));
}

/* ---- learned proposals ---- */

static ppl_status model_motifs_(ppl_model *m, const char *dir, const char **text) {
  ppl_status s = need_data(m);
  if (s != PPL_OK) return s;
  if (!m->an->has_discrete) { /* blocks are discrete: no need to run the program */
    *text = "motifs: 0 blocks\n";
    return ok(m->ctx);
  }
  Diag d;
  diag_init(&d);
  MotifReport r;
  if (!motif_detect(m->in, 1, &r, &d)) return fail_diag(m->ctx, &d);
  if (!dir) dir = motif_default_dir();
  MotifLib *lib = motif_lib_open(dir);
  const char *t = gc_printf("motifs: %d block%s\n", r.nsites, r.nsites == 1 ? "" : "s");
  for (int i = 0; i < r.n; i++) {
    const char *err, *why;
    const MotifNet *net = motif_lib_get(lib, r.found[i].sig, &err);
    if (err) return fail(m->ctx, DIAG_USAGE, "%s", err);
    const char *has = net ? gc_printf("trained proposal in %s", dir)
                      : motif_sig_supported(r.found[i].sig, &why)
                          ? gc_printf("no trained proposal in %s (ppl learn-proposals)",
                                      dir ? dir : "(no library directory)")
                          : "no proposal in this version: single-site moves";
    t = gc_printf("%s  %s: %d block%s (%s%s), %s\n", t, r.found[i].sig, r.found[i].blocks,
                  r.found[i].blocks == 1 ? "" : "s", r.found[i].first,
                  r.found[i].blocks > 1 ? " ..." : "", has);
  }
  if (r.nother)
    t = gc_printf("%s  %d block%s no motif (%s)\n", t, r.nother, r.nother == 1 ? " is" : "s are",
                  r.other);
  *text = t;
  return ok(m->ctx);
}

void ppl_learn_options_default(ppl_learn_options *o) {
  memset(o, 0, sizeof *o);
  o->steps = 1500;
  o->batch = 64;
  o->seed = 1;
}

static bool make_dirs(const char *dir) {
  char *p = gc_strdup(dir);
  for (char *q = p + 1; *q; q++)
    if (*q == '/') {
      *q = 0;
      mkdir(p, 0777);
      *q = '/';
    }
  return mkdir(p, 0777) == 0 || access(p, W_OK) == 0;
}

static ppl_status learn_proposals_(ppl_model *m, const ppl_learn_options *o, int *ntrained) {
  ppl_learn_options def;
  if (!o) ppl_learn_options_default(&def), o = &def;
  if (ntrained) *ntrained = 0;
  const char *dir = o->out_dir ? o->out_dir : motif_default_dir();
  if (!dir) return fail(m->ctx, DIAG_USAGE, "learn-proposals: no library directory (give --out DIR; "
                                            "neither XDG_DATA_HOME nor HOME is set)");
  const char **sigs;
  int n = 0;
  const char *why;
  if (o->motif) {
    if (!motif_sig_supported(o->motif, &why)) return fail(m->ctx, DIAG_USAGE, "learn-proposals: %s", why);
    sigs = gc_alloc(sizeof(char *));
    sigs[n++] = o->motif;
  } else {
    ppl_status s = need_data(m);
    if (s != PPL_OK) return s;
    Diag d;
    diag_init(&d);
    MotifReport r;
    if (!motif_detect(m->in, o->seed, &r, &d)) return fail_diag(m->ctx, &d);
    sigs = gc_alloc(sizeof(char *) * (size_t)(r.n + 1));
    const char *skipped = NULL;
    for (int i = 0; i < r.n; i++)
      if (motif_sig_supported(r.found[i].sig, &why)) sigs[n++] = r.found[i].sig;
      else if (!skipped) skipped = why;
    if (n == 0)
      return fail(m->ctx, DIAG_USAGE, "learn-proposals: %s has no motif this version can learn (%s)",
                  m->file ? m->file : "the model",
                  skipped ? skipped : r.other ? r.other : "no discrete latent with a finite support");
  }
  if (!make_dirs(dir)) return fail(m->ctx, DIAG_IO, "learn-proposals: cannot create the directory %s", dir);
  for (int i = 0; i < n; i++) {
    MotifNet net;
    Rng r;
    rng_seed(&r, o->seed, (uint64_t)i);
    const char *err;
    if (!motif_net_new(&net, sigs[i], &r, &err)) return fail(m->ctx, DIAG_USAGE, "learn-proposals: %s", err);
    MotifTrainOpts to;
    motif_train_opts_default(&to);
    to.steps = o->steps;
    if (o->batch > 0) to.batch = o->batch;
    to.seed = o->seed;
    to.progress = o->progress;
    to.progress_ctx = o->progress_ctx;
    if (!motif_train(&net, &to, &err)) return fail(m->ctx, DIAG_INTERNAL, "%s", err);
    const char *path = gc_printf("%s/%s", dir, motif_file_name(sigs[i]));
    if (!motif_net_save(&net, path, &err)) return fail(m->ctx, DIAG_IO, "%s", err);
    if (ntrained) (*ntrained)++;
  }
  return ok(m->ctx);
}

const char *ppl_model_motifs(ppl_model *m, const char *dir) {
  if (!m) return NULL;
  const char *volatile text = NULL;
  GcGuard g;
  gc_ensure_thread();
  if (m->retired) {
    retired(m, "ppl_model_motifs");
    return NULL;
  }
  if (!gc_guard_enter(&g, setjmp(g.jb))) {
    out_of_memory(m->ctx, m, *(volatile size_t *)&g.bytes);
    return NULL;
  }
  const char *t = NULL;
  if (model_motifs_(m, dir, &t) == PPL_OK) text = t;
  gc_guard_leave(&g);
  return text;
}

const char *ppl_default_proposals_dir(void) {
  gc_ensure_thread();
  return motif_default_dir();
}

ppl_status ppl_learn_proposals(ppl_model *m, const ppl_learn_options *o, int *ntrained) {
  GUARDED_MODEL(m, "ppl_learn_proposals", learn_proposals_(m, o, ntrained));
}

/* The text accessors: NULL on failure, as before. */
static const char *guarded_text(ppl_model *m, const char *name, const char *(*fn)(ppl_model *)) {
  if (!m) return NULL;
  if (m->retired) {
    retired(m, name);
    return NULL;
  }
  const char *volatile text = NULL;
  GcGuard g;
  gc_ensure_thread();
  if (!gc_guard_enter(&g, setjmp(g.jb))) {
    out_of_memory(m->ctx, m, *(volatile size_t *)&g.bytes);
    return NULL;
  }
  text = fn(m);
  gc_guard_leave(&g);
  return text;
}

const char *ppl_model_ir(ppl_model *m) { return guarded_text(m, "ppl_model_ir", model_ir_); }
const char *ppl_model_analysis(ppl_model *m) {
  return guarded_text(m, "ppl_model_analysis", model_analysis_);
}
const char *ppl_model_llvm_ir(ppl_model *m) {
  return guarded_text(m, "ppl_model_llvm_ir", model_llvm_ir_);
}
const char *ppl_model_dependencies(ppl_model *m) {
  return guarded_text(m, "ppl_model_dependencies", model_dependencies_);
}
const char *ppl_model_runtime_calls(ppl_model *m) {
  return guarded_text(m, "ppl_model_runtime_calls", model_runtime_calls_);
}
const char *ppl_model_plates(ppl_model *m) {
  return guarded_text(m, "ppl_model_plates", model_plates_);
}

ppl_status ppl_result_from_csv(ppl_context *ctx, int nfiles, const char *const *paths,
                               ppl_result **out) {
  if (out) *out = NULL;
  if (!ctx) return PPL_ERR_USAGE;
  GUARDED(ctx, NULL, result_from_csv_(ctx, nfiles, paths, out));
}

ppl_status ppl_result_write_summary(const ppl_result *r, const char *path) {
  if (!r) return PPL_ERR_USAGE;
  GUARDED(r->ctx, NULL, result_write_summary_(r, path));
}

ppl_status ppl_generate(ppl_model *m, int nfiles, const char *const *paths, const char *output,
                        uint64_t seed) {
  GUARDED_MODEL(m, "ppl_generate", generate_(m, nfiles, paths, output, seed));
}
