/* jit_host.c — the JIT's half in the library: running compiled code and
 * reporting on it, and loading the LLVM half (ir/jit.c, ir/jit_native.c, built
 * as libppl_jit.so: ir/jit_module.h) the first time something is compiled.
 *
 * The library does not link libLLVM, whose loading would cost every process
 * tens of milliseconds; a run that compiles nothing never loads it.  The
 * module is looked for, in order, where $PPL_JIT_MODULE says (only there, when
 * set), beside the shared object holding this code (an installed libppl.so,
 * or build/libppl.so), in the build tree it was built in, and in the install
 * directory.  A module that is missing, fails to load or belongs to another
 * build makes jit_compile fail with the reason, and callers interpret.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "jit_module.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const JitSite *jit_site(const Jit *j, int i) { return &j->sites[i]; }

const JitLatents *jit_latents(const Jit *j) { return &j->lat; }
const Interp *jit_interp(const Jit *j) { return j->in; }
const JitData *jit_data0(const Jit *j) { return j->data0; }
const char *jit_llvm_ir(const Jit *j) { return j->ir_text; }
double jit_compile_ms(const Jit *j) { return j->ms; }

/* What a runtime call site does, in the words of the program. */
static const char *site_what(const IrInstr *ins) {
  switch ((IrOpcode)ins->op) {
  case IR_BUILTIN: return gc_printf("%s(...)", ins->builtin->name);
  case IR_SAMPLE: return gc_printf("a latent of %s", ins->dist.fam->name);
  case IR_OBSERVE: return gc_printf("~ %s", ins->dist.fam->name);
  case IR_INDEX: return "indexing";
  case IR_STORE: return "an element store";
  case IR_BINARY: return gc_printf("the operator %s of containers", ir_op_name((IrOp)ins->sub));
  case IR_UNARY: return gc_printf("the operator %s of a container", ir_op_name((IrOp)ins->sub));
  case IR_ODE: return "ode_rk45 (the solver, with the right-hand side interpreted)";
  case IR_DECL: return "a container declaration";
  case IR_MOVE: return "a container copy";
  case IR_CONST: return "a container constant";
  case IR_ARRAY: return "an array expression";
  case IR_ROWVEC: return "a vector expression";
  default: return "an operation";
  }
}

/* Sites whose runtime call records nothing on a tape: kernels with their own
   derivative (jit_rt.c's FR_BLOCK and FR_WHOLE: the matrix-valued builtins'
   block rules, whole-value families' densities), and builtins of operands
   that carry no derivative (rep_vector(0, N)). */
static const char *site_kernel(const JitSite *s) {
  const IrInstr *ins = s->ins;
  const DistFamily *f = NULL;
  if (jit_rt_slice_ok(ins, s->fn)) return "a row or column copied, no tape";
  if (ins->op == IR_BUILTIN && (s->rkind == JA_INT || s->rkind == JA_BOOL) && s->nargs <= 8 &&
      !jit_rt_lpdf_family(ins->builtin) && !jit_rt_rng_family(ins->builtin)) /* fast_nograd */
    return "an int or bool result, no derivative: no tape";
  if (ins->op != IR_SAMPLE) {
    bool active = false;
    for (int k = 0; k < s->nargs; k++)
      active = active || s->akind[k] == JA_REAL_ACT || s->akind[k] == JA_BOX_ACT;
    if (!active) return "the interpreter's implementation, constant operands: no tape";
  }
  if (ins->op == IR_BUILTIN && builtin_has_block(ins->builtin))
    return "a matrix kernel and its vector-Jacobian product, no tape";
  if (jit_rt_dot_ok(ins, s->fn)) return "a dot product and its partials, no tape";
  if (ins->op == IR_OBSERVE) f = ins->dist.fam;
  else if (ins->op == IR_BUILTIN) f = jit_rt_lpdf_family(ins->builtin);
  if (f && !dist_scalar_family(f) && f->lpdf_grad && !f->lpdf_ctx)
    return "the family's density and partials, no tape";
  if (f && dist_scalar_family(f) && dist_has_grad1(f)) /* fast_density */
    return "the family's density and partials, no tape";
  if (ins->op == IR_SAMPLE) { /* fast_sample: scalar bounds that are constants */
    ConKind con = (ConKind)ins->con.kind;
    int np = ins->dist.nparams, lo = ins->con.lower >= 0 ? np : -1;
    int hi = ins->con.upper >= 0 ? np + (lo >= 0) : -1;
    f = ins->dist.fam;
    if (dist_scalar_family(f) && dist_has_grad1(f) &&
        (con == CON_NONE || con == CON_LOWER || con == CON_UPPER || con == CON_LOWER_UPPER) &&
        (lo < 0 || s->akind[lo] == JA_REAL || s->akind[lo] == JA_INT) &&
        (hi < 0 || s->akind[hi] == JA_REAL || s->akind[hi] == JA_INT))
      return "the family's density and partials, no tape";
    if (jit_rt_struct_ok(ins, s->fn->regtypes[ins->dst])) /* fast_structured */
      return con == CON_NONE ? "the family's density and partials, no tape"
                             : "the transform's and the family's derivatives, no tape";
  }
  return NULL;
}

const char *jit_runtime_calls(const Jit *j, int *count) {
  const char *file = j->prog && j->prog->file ? j->prog->file : "model";
  char *out = gc_strdup("");
  int n = j->nsites_ld, ntape_free = 0;
  for (int i = 0; i < n; i++) {
    const IrInstr *ins = j->sites[i].ins;
    if (ins->op == IR_ODE) { /* the solver's C and, unless said, a compiled right-hand side */
      const JitSite *s = &j->sites[i];
      out = gc_printf("%s%s:%d:%d: ode_rk45: runtime call (the solver; %s)\n", out, file,
                      ins->pos.line, ins->pos.col,
                      s->ode ? "the right-hand side compiled"
                             : gc_printf("the right-hand side interpreted: %s", s->ode_why));
      continue;
    }
    const char *k = site_kernel(&j->sites[i]);
    if (k) ntape_free++;
    out = gc_printf("%s%s:%d:%d: %s: runtime call (%s)\n", out, file, ins->pos.line, ins->pos.col,
                    site_what(ins), k ? k : "the interpreter's implementation, on a tape");
  }
  if (count) *count = n;
  return gc_printf("%sbackend: %d runtime call site%s in the compiled log density, %d on a tape\n",
                   out, n, n == 1 ? "" : "s", n - ntape_free);
}

bool jit_has_draw(const Jit *j) {
  Jit *m = (Jit *)j; /* compiles on first use, under the lock */
  pthread_mutex_lock(&m->mu);
  if (!m->draw_tried) {
    m->draw_tried = true;
    m->draw = jit_module(NULL)->compile_draw(m); /* loaded: j was compiled */
  }
  pthread_mutex_unlock(&m->mu);
  return j->draw != NULL;
}
const char *jit_draw_refusal(const Jit *j) { return j->draw_why; }
const char *jit_draw_unrecorded(const Jit *j) { return j->draw_unrecorded; }
double jit_draw_ms(const Jit *j) { return j->draw_ms; }

Value *jit_draw(JitCtx *cx, const double *theta, uint64_t seed, uint64_t stream) {
  const Jit *j = cx->jit;
  if (!cx->draw_ready) {
    if (!jit_has_draw(j)) return NULL;
    cx->draw_ready = true;
  }
  const IrProgram *p = interp_program(j->in);
  rng_seed(&cx->rng, seed, stream);
  rng_seed(&cx->drng, seed, stream ^ 0x656e756dULL); /* inference/logdensity.c's draw handler */
  cx->nchoices = 0;
  cx->outputs = gc_alloc(sizeof(Value) * (size_t)(p->noutputs ? p->noutputs : 1));
  double lp;
  if (j->draw(cx, theta, NULL, &lp) != 0) return NULL;
  return cx->outputs;
}

/* ---- a draw's nested latents under the interpreter's addresses ---- */

static bool choice_same(const JitChoice *a, const JitChoice *b) {
  if (a->name != b->name || a->nidx != b->nidx) return false;
  for (int k = 0; k < a->nidx; k++)
    if (a->idx[k] != b->idx[k]) return false;
  return true;
}

/* "z[2,5]": the name and the loops' indices, as interp.c's sample_address. */
static char *choice_base(const JitChoice *c) {
  size_t nn = strlen(c->name), cap = nn + 3 + (size_t)c->nidx * 22;
  char *b = gc_alloc_atomic(cap);
  memcpy(b, c->name, nn);
  size_t k = nn;
  for (int i = 0; i < c->nidx; i++)
    k += (size_t)snprintf(b + k, cap - k, "%s%lld", i ? "," : "[", (long long)c->idx[i]);
  if (c->nidx) b[k++] = ']';
  b[k] = 0;
  return b;
}

/* The addresses of cx's choices: each base once, a repeat within the draw
   "base#2", "base#3" (interp.c's addr_unique), counted in a hash table. */
static const char **choice_addresses(const JitChoice *c, int n) {
  const char **a = gc_alloc(sizeof(char *) * (size_t)(n ? n : 1));
  size_t cap = 16;
  while (cap < 2 * (size_t)n) cap *= 2;
  const char **key = gc_alloc(sizeof(char *) * cap);
  int *count = gc_alloc_atomic(sizeof(int) * cap);
  for (int i = 0; i < n; i++) {
    char *b = choice_base(&c[i]);
    uint64_t h = 1469598103934665603ull;
    for (const char *q = b; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
    size_t e = h & (cap - 1);
    while (key[e] && strcmp(key[e], b) != 0) e = (e + 1) & (cap - 1);
    if (!key[e]) key[e] = b, count[e] = 0;
    int k = ++count[e];
    a[i] = k == 1 ? b : gc_printf("%s#%d", b, k);
  }
  return a;
}

InterpLatent *jit_draw_nested(JitCtx *cx, int *n) {
  int m = cx->nchoices;
  *n = m;
  /* the same names and indices as the last draw (a fixed structure): its
     addresses again, not made anew */
  bool same = cx->addrs && cx->nprev == m;
  for (int i = 0; same && i < m; i++) same = choice_same(&cx->choices[i], &cx->prev[i]);
  if (!same) {
    cx->addrs = choice_addresses(cx->choices, m);
    cx->prev = gc_alloc(sizeof(JitChoice) * (size_t)(m ? m : 1));
    if (m) memcpy(cx->prev, cx->choices, sizeof(JitChoice) * (size_t)m);
    cx->nprev = m;
  }
  InterpLatent *a = gc_alloc(sizeof(InterpLatent) * (size_t)(m ? m : 1));
  for (int i = 0; i < m; i++) a[i] = (InterpLatent){cx->addrs[i], cx->choices[i].v};
  return a;
}

bool jit_eval(JitCtx *cx, const double *theta, double *lp, double *grad) {
  const Jit *j = cx->jit;
  if (grad) memset(grad, 0, sizeof(double) * j->dim);
  return j->fn(cx, theta, grad, lp) == 0;
}

int jit_ctx_tapes(const JitCtx *cx) { return cx->ntape_used; }

#define JIT_BATCH 32 /* points a batch's products are made for at once */

void jit_eval_batch(JitCtx *cx, size_t n, const double *theta, double *lp, bool *ok) {
  const Jit *j = cx->jit;
  for (size_t s0 = 0; s0 < n; s0 += JIT_BATCH) {
    size_t m = n - s0 < JIT_BATCH ? n - s0 : JIT_BATCH;
    const double *th = theta + s0 * j->dim;
    jit_rt_batch_begin(cx, th, j->dim, m);
    for (size_t s = 0; s < m; s++) {
      jit_rt_batch_point(s);
      ok[s0 + s] = j->fn(cx, th + s * j->dim, NULL, &lp[s0 + s]) == 0;
    }
    jit_rt_batch_end();
  }
}

/* ---- loading the module ---- */

/* The process's one copy of the module: loaded once, never unloaded (code it
   compiled may run until the process ends). */
static pthread_once_t module_once = PTHREAD_ONCE_INIT;
static const JitModule *module;
static char module_why[1024];

#if PPL_HAVE_LLVM
/* Try one path: false when there is no file there (the search goes on); true
   when there is, with module set or module_why saying why not. */
static bool module_try(const char *path) {
  if (access(path, F_OK) != 0) return false;
  void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL); /* libLLVM binds its calls as made */
  if (!h) {
    snprintf(module_why, sizeof module_why, "cannot load the JIT module: %s", dlerror());
    return true;
  }
  const JitModule *m = dlsym(h, PPL_JIT_MODULE_SYMBOL);
  size_t sizes[3] = {JIT_MODULE_SIZES};
  if (!m || strcmp(m->version, PPL_JIT_MODULE_VERSION) != 0 || m->size_jit != sizes[0] ||
      m->size_ctx != sizes[1] || m->size_site != sizes[2]) {
    snprintf(module_why, sizeof module_why,
             "cannot load the JIT module: %s is not of this build of ppl (%s)", path,
             m ? m->version : "no " PPL_JIT_MODULE_SYMBOL);
    dlclose(h);
    return true;
  }
  module = m;
  return true;
}

static void module_load(void) {
  const char *env = getenv("PPL_JIT_MODULE");
  if (env && *env) {
    if (!module_try(env))
      snprintf(module_why, sizeof module_why,
               "cannot load the JIT module: %s (PPL_JIT_MODULE) does not exist", env);
    return;
  }
  char here[4096] = "";
  Dl_info info;
  if (dladdr((void *)jit_module, &info) && info.dli_fname) {
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash)
      snprintf(here, sizeof here, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname,
               PPL_JIT_MODULE_FILE);
  }
  if ((*here && module_try(here)) || module_try(PPL_JIT_MODULE_BUILD) ||
      module_try(PPL_JIT_MODULE_INSTALL))
    return;
  snprintf(module_why, sizeof module_why,
           "cannot load the JIT module: " PPL_JIT_MODULE_FILE " is in none of %s%s" PPL_JIT_MODULE_BUILD
           ", " PPL_JIT_MODULE_INSTALL " (set PPL_JIT_MODULE to its path)",
           here, *here ? ", " : "");
}
#else
static void module_load(void) { snprintf(module_why, sizeof module_why, "ppl was built without LLVM"); }
#endif

const JitModule *jit_module(const char **why) {
  pthread_once(&module_once, module_load);
  if (!module && why) *why = gc_strdup(module_why);
  return module;
}

/* ---- the entry points that need LLVM: the module's ---- */

Jit *jit_compile(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir, bool quick,
                 const char **why) {
  const JitModule *m = jit_module(why);
  return m ? m->compile(in, lat, dim, keep_ir, quick, why) : NULL;
}

void jit_free(Jit *j) {
  if (j) jit_module(NULL)->free(j);
}

JitData *jit_data_bind(const Jit *j, const Value *data, const char **why) {
  return jit_module(NULL)->data_bind(j, data, why);
}

JitKernel *jit_kernel_compile(const DistFamily *f, int width, const char **why) {
  const JitModule *m = jit_module(why);
  return m ? m->kernel_compile(f, width, why) : NULL;
}

JitKernel *jit_rule_compile(const ScalarRule *r, const char **why) {
  const JitModule *m = jit_module(why);
  return m ? m->rule_compile(r, why) : NULL;
}

JitKernelFn jit_kernel_fn(const JitKernel *k) {
  return (JitKernelFn)(uintptr_t)jit_module(NULL)->kernel_fn(k);
}

JitRuleFn jit_rule_fn(const JitKernel *k) {
  return (JitRuleFn)(uintptr_t)jit_module(NULL)->kernel_fn(k);
}

void jit_kernel_free(JitKernel *k) {
  if (k) jit_module(NULL)->kernel_free(k);
}
