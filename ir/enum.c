/* enum.c — discrete latents summed out by enumeration (enum.h says what and
 * why).  Two passes over the model block: the plan finds each discrete
 * choice's segment and says why one cannot be enumerated; the rewrite copies
 * the program with each segment run once per value of the support. */
#include "enum.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"

typedef struct Plan Plan;
typedef struct Site Site;
static bool chain_fusable(const Plan *P, const Site *s);

/* Where a discrete choice is summed out. */
struct Site {
  const IrInstr *ins;     /* the SAMPLE */
  const IrBlock *seg;     /* the block whose tail [from, n) is the segment */
  int from;
  const IrInstr *loop;    /* element form: the loop reading z[n] (seg is its body) */
  bool top;               /* the SAMPLE is in the model block's own list */
  int kind;               /* SUP_* */
  /* a chain: the loop F (chain) whose body seg holds the SAMPLE at index at,
     the value carried to the next iteration (carry = move z) */
  const IrInstr *chain;
  int at, carry;
  bool carry_arr;         /* the state is carry[t - 1] (z[t] = zt), not carry itself */
  const IrInstr *outer;   /* a scalar in a loop (not a chain): that loop */
  /* a scalar's segment as a set (top level and in a loop, not a chain): of
     seg's instructions from `from` on, those that depend on the choice or
     that such a one needs before it; the others run once, after it */
  const bool *mask;
  int parent;             /* the site whose segment holds this choice, or -1 */
  bool nested;            /* under an if, or in a loop in a loop: no pr_ output */
  int group1;             /* its variable-elimination group's index + 1, or 0 */
  /* a factorial chain (two chains in one loop, plan_factorial): the other
     chain's site + 1, or 0; the first of the two (partner1 > its index)
     sums both over the product state */
  int partner1;
};

/* Variable elimination over a group: a root scalar with a segment set and
   the scalars summed inside it (all in the root's block, at its top level).
   Members are numbered 0..m-1 in program order; a scope is a bit set of
   them. */
#define GROUP_MAX 12

typedef struct Group {
  int m;
  int mem[GROUP_MAX];        /* their sites */
  int at[GROUP_MAX];         /* their SAMPLEs' indices in b */
  const IrBlock *b;          /* the root's block, its segment b[from..] under mask */
  int from;
  const bool *mask;
  unsigned *isc;             /* per instruction of b: the members it depends on */
  bool *iscore;              /* per instruction of b: it scores (not a member) */
  int order[GROUP_MAX];      /* the elimination order (min fill) */
  unsigned step[GROUP_MAX];  /* per step: the eliminated one and its neighbours */
} Group;

/* SUP_RANGE: a choice with declared bounds (`int<lower=a, upper=b> k ~
   poisson(l)`), its values a..b (a bound not declared is the family's own),
   its probabilities renormalised over them as the truncation does */
enum { SUP_BERNOULLI, SUP_CATEGORICAL, SUP_UNIFORM, SUP_BINOMIAL, SUP_RANGE };

struct Plan {
  const IrProgram *p;
  EnumPlan *pub;
  Site *sites;          /* per latent of pub */
  int cap;
  bool *written;        /* registers written anywhere in the model block */
  /* instructions of top-level segments that do not depend on their choice
     (continuous latents declared after it among them): moved before it */
  const IrInstr **hoist;
  int *hoist_for;       /* per hoisted instruction: the site it is moved before */
  int nhoist, caphoist;
  /* where plan_block is: under an if, its loop depth, the innermost loop */
  bool in_branch;
  int depth;
  const IrInstr *loop;
  Group *groups;
  int ngroups;
};

static bool hoisted(const Plan *P, const IrInstr *in) {
  for (int i = 0; i < P->nhoist; i++)
    if (P->hoist[i] == in) return true;
  return false;
}

static bool hoisted_for(const Plan *P, const IrInstr *in, int site) {
  for (int i = 0; i < P->nhoist; i++)
    if (P->hoist[i] == in) return P->hoist_for[i] == site;
  return false;
}

/* ---- register facts -------------------------------------------------------- */

static bool reads_reg(const IrInstr *in, int r);

static bool block_reads(const IrBlock *b, int from, int to, int r) {
  for (int i = from; i < to; i++)
    if (reads_reg(&b->ins[i], r)) return true;
  return false;
}

/* Does the instruction (or one nested in it) read register r? */
static bool reads_reg(const IrInstr *in, int r) {
  if (ir_instr_reads_here(in, r)) return true;
  if (in->op == IR_WHILE && block_reads(&in->cond_b, 0, in->cond_b.n, r)) return true;
  return block_reads(&in->then_b, 0, in->then_b.n, r) ||
         block_reads(&in->else_b, 0, in->else_b.n, r) || block_reads(&in->body, 0, in->body.n, r);
}

static void mark_writes(const IrBlock *b, int from, bool *w) {
  for (int i = from; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->dst >= 0) w[in->dst] = true;
    if (in->op == IR_FOR) w[in->var] = true;
    mark_writes(&in->then_b, 0, w);
    mark_writes(&in->else_b, 0, w);
    mark_writes(&in->body, 0, w);
    mark_writes(&in->cond_b, 0, w);
  }
}

/* The only instruction of the model block writing r, when it is a constant. */
static const IrInstr *const_def(const Plan *P, const IrBlock *b, int r) {
  for (int i = 0; i < b->n; i++)
    if (b->ins[i].op == IR_CONST && b->ins[i].dst == r) return &b->ins[i];
  (void)P;
  return NULL;
}

/* Is r known once the data is loaded: written by the data block only, or a
   constant of the model block? */
static bool data_reg(const Plan *P, int r) {
  if (!P->written[r]) return true;
  return const_def(P, &P->p->model_b, r) != NULL;
}

/* ---- the plan ---------------------------------------------------------------- */

static EnumLatent *new_latent(Plan *P, const IrInstr *in, const char *why) {
  EnumPlan *pl = P->pub;
  if (pl->n == P->cap) {
    int cap = P->cap ? 2 * P->cap : 8;
    EnumLatent *l = gc_alloc(sizeof *l * (size_t)cap);
    Site *s = gc_alloc(sizeof *s * (size_t)cap);
    if (pl->n) {
      memcpy(l, pl->lat, sizeof *l * (size_t)pl->n);
      memcpy(s, P->sites, sizeof *s * (size_t)pl->n);
    }
    pl->lat = l, P->sites = s, P->cap = cap;
  }
  EnumLatent *L = &pl->lat[pl->n];
  P->sites[pl->n] = (Site){.ins = in};
  pl->n++;
  L->name = in->name;
  L->pos = in->pos;
  L->size = L->joint = -1;
  L->parent = -1;
  L->instr = in;
  if (why) L->why = gc_printf("%s:%d:%d: %s", in->pos.file ? in->pos.file : P->p->file,
                              in->pos.line, in->pos.col, why);
  return L;
}

static const char *reg_label(const IrProgram *p, int r) {
  const char *s = p->main.regnames ? p->main.regnames[r] : NULL;
  return s ? s : "a temporary";
}

/* A bounded choice's range: each end a register (>= 0) or the constant in
   *k.  An end not declared is the family's: bernoulli's 0 and 1, binomial's
   0 and n, discrete_uniform's parameters, and a lower end of 0 where the
   family's support starts there whatever its parameters (the counts). */
static bool range_of(const IrInstr *in, int *lr, long *lk, int *hr, long *hk) {
  const DistFamily *fam = in->dist.fam;
  const char *f = fam->name;
  const int *pr = in->dist.params;
  int c = in->con.kind;
  *lr = c == CON_LOWER || c == CON_LOWER_UPPER ? in->con.lower : -1;
  *hr = c == CON_UPPER || c == CON_LOWER_UPPER ? in->con.upper : -1;
  *lk = *hk = 0;
  bool lo_ok = *lr >= 0, hi_ok = *hr >= 0;
  if (!strncmp(f, "bernoulli", 9)) {
    *hk = 1, lo_ok = hi_ok = true;
  } else if (!strncmp(f, "binomial", 8)) {
    if (*hr < 0) *hr = pr[0];
    lo_ok = hi_ok = true;
  } else if (!strcmp(f, "discrete_uniform")) {
    if (*lr < 0) *lr = pr[0];
    if (*hr < 0) *hr = pr[1];
    lo_ok = hi_ok = true;
  } else if (!lo_ok && fam->support) { /* 0 at two unrelated parameter points */
    double p1[DIST_MAX_PARAMS], p2[DIST_MAX_PARAMS], a1, b1, a2, b2;
    for (int i = 0; i < DIST_MAX_PARAMS; i++) p1[i] = 0.37, p2[i] = 4.5;
    fam->support(p1, &a1, &b1);
    fam->support(p2, &a2, &b2);
    lo_ok = a1 == 0 && a2 == 0;
  }
  return lo_ok && hi_ok;
}

/* The support's kind and the factor's size in words, or why it has none. */
static const char *support_of(const Plan *P, const IrInstr *in, int *kind, const char **cost) {
  const char *f = in->dist.fam->name;
  const int *pr = in->dist.params;
  const IrProgram *p = P->p;
  int c = in->con.kind;
  if (c == CON_LOWER || c == CON_UPPER || c == CON_LOWER_UPPER) {
    int lr, hr;
    long lk, hk;
    if (!dist_scalar_family(in->dist.fam))
      return gc_printf("it has declared bounds, which %s does not truncate to", f);
    if (!range_of(in, &lr, &lk, &hr, &hk))
      return gc_printf("its family %s has no finite support within its declared bounds (declare "
                       "both: int<lower=a, upper=b>)", f);
    for (int e = 0; e < 2; e++) {
      int r = e ? hr : lr;
      if (r < 0) continue;
      if (!data_reg(P, r))
        return "its bounds are computed in the model block, not known once the data is loaded";
      if (p->main.regtypes[r].base != TY_INT || p->main.regtypes[r].ndims)
        return "its bounds are not integers";
    }
    *kind = SUP_RANGE;
    const char *l = lr >= 0 ? reg_label(p, lr) : gc_printf("%ld", lk);
    *cost = hr >= 0 ? gc_printf("%s - %s + 1", reg_label(p, hr), l) : gc_printf("%ld", hk - lk + 1);
    return NULL;
  }
  if (!strcmp(f, "bernoulli") || !strcmp(f, "bernoulli_logit")) {
    *kind = SUP_BERNOULLI, *cost = "2";
  } else if (!strcmp(f, "categorical") || !strcmp(f, "categorical_logit")) {
    *kind = SUP_CATEGORICAL;
    *cost = gc_printf("size of %s", reg_label(p, pr[0]));
  } else if (!strcmp(f, "discrete_uniform")) {
    if (!data_reg(P, pr[0]) || !data_reg(P, pr[1]))
      return "its bounds are computed in the model block, not known once the data is loaded";
    *kind = SUP_UNIFORM;
    *cost = gc_printf("%s - %s + 1", reg_label(p, pr[1]), reg_label(p, pr[0]));
  } else if (!strcmp(f, "binomial")) {
    if (!data_reg(P, pr[0]))
      return "its number of trials is computed in the model block, not known once the data is "
             "loaded";
    *kind = SUP_BINOMIAL;
    *cost = gc_printf("%s + 1", reg_label(p, pr[0]));
  } else {
    return gc_printf("its family %s has no finite support (bounds such as int<upper=U> would "
                     "give it one)", f);
  }
  if (c != CON_NONE) return "it has a constraint other than bounds";
  return NULL;
}

/* Why the segment b[from..] cannot be run once per value, or NULL.  z: the
   choice; skip: the SAMPLE itself (not part of the segment). */
static const char *segment_ok(const Plan *P, const IrInstr *z, const IrBlock *b, int from,
                              int allow, const bool *mask);

/* mask: the segment's own instructions of b (a set segment, whose block may
   hold further discrete scalars: summed inside it), NULL in nested blocks. */
/* inner: b is the body of a loop at the top level of a top-level choice's
   segment, where a discrete scalar (a chain's step, a per-datapoint choice)
   is summed inside the choice's sum (plan_nesting checks it is enumerated). */
static const char *walk_segment(const Plan *P, const IrInstr *z, const IrBlock *b, int from,
                                bool *def, const bool *w, const bool *mask, bool inner) {
  const IrProgram *p = P->p;
  for (int i = from; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (mask && !mask[i]) continue; /* runs after the segment */
    if (hoisted(P, in)) { /* runs before the choice */
      def[in->dst] = true;
      continue;
    }
    if ((mask || inner) && in->op == IR_SAMPLE && in->dist.fam->discrete &&
        p->main.regtypes[in->dst].ndims == 0) { /* summed out inside this one's segment */
      def[in->dst] = true;
      continue;
    }
    if (in->op == IR_SAMPLE && !in->dist.fam->discrete && b == &p->model_b)
      return gc_printf("the latent '%s' (line %d) lies in its segment and depends on '%s' (or on "
                       "a value computed after it that cannot move before it): a continuous latent "
                       "that depends on a discrete one is not enumerated", in->name, in->pos.line,
                       z->name);
    if (in->op == IR_SAMPLE)
      return in->dist.fam->discrete
                 ? gc_printf("the discrete latent '%s' (line %d) lies in its segment (two discrete "
                             "latents in one segment are not enumerated yet)", in->name, in->pos.line)
                 : gc_printf("the latent '%s' (line %d) lies in its segment, between it and the end "
                             "of its block; declare '%s' before '%s'", in->name, in->pos.line,
                             in->name, z->name);
    if (in->op == IR_CALL && p->funcs[in->callee].stochastic)
      return gc_printf("its segment calls '%s', which draws or scores (line %d)",
                       p->funcs[in->callee].name, in->pos.line);
    if (in->op == IR_PARAM || in->op == IR_NET || in->op == IR_RETURN || in->op == IR_BREAK ||
        in->op == IR_CONTINUE)
      return gc_printf("its segment holds a statement enumeration does not rewrite (line %d)",
                       in->pos.line);
    /* a value the segment updates from its value before the segment would be
       updated once per value of the support */
    for (int r = 0; r < p->main.nregs; r++)
      if (w[r] && !def[r] && reads_reg(in, r) && in->op != IR_IF && in->op != IR_FOR &&
          in->op != IR_WHILE)
        return gc_printf("its segment updates '%s' from its value before the segment (line %d)",
                         reg_label(p, r), in->pos.line);
    if (in->op == IR_IF || in->op == IR_FOR || in->op == IR_WHILE) {
      size_t nr = (size_t)p->main.nregs;
      for (int k = 0; k < in->nargs; k++)
        if (w[in->args[k]] && !def[in->args[k]])
          return gc_printf("its segment updates '%s' from its value before the segment (line %d)",
                           reg_label(p, in->args[k]), in->pos.line);
      bool *d1 = gc_alloc_atomic(nr), *d2 = gc_alloc_atomic(nr);
      memcpy(d1, def, nr);
      if (in->op == IR_FOR) d1[in->var] = true;
      memcpy(d2, def, nr);
      const char *why = NULL;
      if (in->op == IR_IF)
        why = walk_segment(P, z, &in->then_b, 0, d1, w, NULL, false) ?:
              walk_segment(P, z, &in->else_b, 0, d2, w, NULL, false);
      else if (in->op == IR_FOR)
        why = walk_segment(P, z, &in->body, 0, d1, w, NULL, mask && b == &p->model_b);
      else
        why = walk_segment(P, z, &in->cond_b, 0, d1, w, NULL, false) ?:
              walk_segment(P, z, &in->body, 0, d1, w, NULL, false);
      if (why) return why;
      if (in->op == IR_IF) /* written on both branches: certain */
        for (size_t r = 0; r < nr; r++) def[r] = def[r] || (d1[r] && d2[r]);
      continue;
    }
    if (in->dst >= 0 && in->op != IR_STORE) def[in->dst] = true;
  }
  return NULL;
}

static const char *segment_ok(const Plan *P, const IrInstr *z, const IrBlock *b, int from,
                              int allow, const bool *mask) {
  int nr = P->p->main.nregs;
  bool *w = gc_alloc_atomic((size_t)nr), *def = gc_alloc_atomic((size_t)nr);
  memset(w, 0, (size_t)nr);
  memset(def, 0, (size_t)nr);
  for (int i = from; i < b->n; i++)
    if (!mask || mask[i]) mark_writes(&(IrBlock){1, &b->ins[i]}, 0, w);
  if (allow >= 0) w[allow] = false; /* a chain's state, which the rewrite sets */
  def[z->dst] = true;
  return walk_segment(P, z, b, from, def, w, mask, false);
}

/* The segment of the choice z at b[from - 1] as a set: the instructions of
   b[from..] (not moved before z) that read what z or another member writes,
   those a member reads the result of (a discrete choice among them is summed
   out inside z's segment), and those that would otherwise run after a
   member that overwrites what they read or write.  The others run once,
   after the segment: independent latents are summed one after the other,
   not one inside the other (K1 + K2 terms, not K1 x K2). */
static bool *segment_mask(const Plan *P, const IrInstr *z, const IrBlock *b, int from) {
  int nr = P->p->main.nregs, n = b->n;
  bool *m = gc_alloc_atomic((size_t)n + 1), *t = gc_alloc_atomic((size_t)nr);
  memset(m, 0, (size_t)n + 1);
  memset(t, 0, (size_t)nr);
  bool **rd = gc_alloc(sizeof *rd * (size_t)(n + 1)), **wr = gc_alloc(sizeof *wr * (size_t)(n + 1));
  for (int i = from; i < n; i++) {
    rd[i] = gc_alloc_atomic((size_t)nr), wr[i] = gc_alloc_atomic((size_t)nr);
    memset(wr[i], 0, (size_t)nr);
    mark_writes(&(IrBlock){1, &b->ins[i]}, 0, wr[i]);
    for (int r = 0; r < nr; r++) rd[i][r] = reads_reg(&b->ins[i], r);
  }
  t[z->dst] = true;
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = from; i < n; i++) {
      if (hoisted(P, &b->ins[i])) continue;
      for (int r = 0; r < nr && !m[i]; r++)
        if (t[r] && rd[i][r]) m[i] = changed = true;
      if (m[i])
        for (int r = 0; r < nr; r++) t[r] = t[r] || wr[i][r];
    }
    for (int i = from; i < n; i++) {
      if (m[i] || hoisted(P, &b->ins[i])) continue;
      for (int j = i + 1; j < n && !m[i]; j++) {
        if (!m[j]) continue;
        for (int r = 0; r < nr && !m[i]; r++)
          if ((wr[i][r] && rd[j][r]) || (wr[j][r] && (rd[i][r] || wr[i][r]))) m[i] = changed = true;
      }
    }
  }
  return m;
}

/* Is a register the segment writes read elsewhere in the model block (before
   it in its loop's next iteration, or after the loop)?  Then its value would
   be the last enumerated one's. */
static const char *leaks(const Plan *P, const IrBlock *b, int from, const IrBlock *outer_rest,
                         int orest_from, const IrBlock *pre, int pre_to, const char *zname) {
  int nr = P->p->main.nregs;
  bool *w = gc_alloc_atomic((size_t)nr);
  memset(w, 0, (size_t)nr);
  mark_writes(b, from, w);
  for (int r = 0; r < nr; r++) {
    if (!w[r]) continue;
    if (pre && block_reads(pre, 0, pre_to, r))
      return gc_printf("'%s' carries a value from its segment to the next iteration, a chain "
                       "(chains such as hidden Markov models are not enumerated yet)",
                       reg_label(P->p, r));
    if (outer_rest && block_reads(outer_rest, orest_from, outer_rest->n, r))
      return gc_printf("'%s', which its segment writes, is read after the loop (only the last "
                       "value of '%s' would reach it)", reg_label(P->p, r), zname);
  }
  return NULL;
}

/* The element form: `int z[N] ~ f(...)` in b at i, read only as z[n] in one
   later `for (n in 1:N)` of b.  The loop's index, or -1 with *why. */
static int element_loop(const Plan *P, const IrInstr *in, const IrBlock *b, int i,
                        const char **why) {
  int z = in->dst, found = -1;
  for (int j = i + 1; j < b->n; j++) {
    if (!reads_reg(&b->ins[j], z)) continue;
    if (found >= 0 || b->ins[j].op != IR_FOR) {
      *why = gc_printf("'%s' is read at line %d other than as '%s[n]' in one loop over n",
                       in->name, b->ins[j].pos.line, in->name);
      return -1;
    }
    found = j;
  }
  if (found < 0) {
    *why = gc_printf("no loop reads '%s'", in->name);
    return -1;
  }
  const IrInstr *F = &b->ins[found];
  const IrInstr *c1 = const_def(P, b, F->args[0]);
  if (in->nsizes != 1 || F->args[1] != in->sizes[0] || !c1 || c1->imm.k != V_INT || c1->imm.i != 1) {
    *why = gc_printf("the loop at line %d does not run over all of '%s' (for (n in 1:N) with "
                     "N its size)", F->pos.line, in->name);
    return -1;
  }
  return found;
}

/* Every read of z in b is z[v] (one single index, the loop variable v). */
static bool only_elements(const IrBlock *b, int z, int v) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_INDEX && in->args[0] == z) {
      if (in->nidx != 1 || in->idx[0].kind != IX_SINGLE || in->idx[0].lo != v) return false;
      continue;
    }
    if ((in->dst == v || (in->op == IR_FOR && in->var == v))) return false;
    for (int k = 0; k < in->nargs; k++)
      if (in->args[k] == z) return false;
    if (in->op == IR_STORE && in->dst == z) return false;
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++)
      if (!only_elements(subs[k], z, v)) return false;
    /* any other use (a distribution's parameter, a size): not an element read */
    IrInstr probe = *in;
    probe.nargs = 0, probe.then_b.n = probe.else_b.n = probe.cond_b.n = probe.body.n = 0;
    if (reads_reg(&probe, z)) return false;
  }
  return true;
}

static void plan_block(Plan *P, const IrBlock *b, bool top, const IrBlock *outer, int outer_i,
                       int depth);

static int count_writes(const IrBlock *b, int from, int r) {
  int n = 0;
  for (int i = from; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    n += in->dst == r || (in->op == IR_FOR && in->var == r);
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++) n += count_writes(subs[k], 0, r);
  }
  return n;
}

static const IrInstr *find_def(const IrBlock *b, int r) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->dst == r && in->op != IR_STORE) return in;
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++) {
      const IrInstr *d = find_def(subs[k], r);
      if (d) return d;
    }
  }
  return NULL;
}

/* Is r computed as t - 1 in the loop body (or the 1 in the model block)? */
static bool is_prev(const Plan *P, const IrBlock *body, int r, int t) {
  const IrInstr *d = find_def(body, r);
  if (!d || d->op != IR_BINARY || d->sub != OP_SUB || d->args[0] != t) return false;
  const IrInstr *c = find_def(body, d->args[1]);
  if (!c) c = find_def(&P->p->model_b, d->args[1]);
  return c && c->op == IR_CONST && c->imm.k == V_INT && c->imm.i == 1;
}

/* Every read of the array arr in blk is arr[t - 1] (before the choice) or
   arr[t] (after it, once the choice is stored there). */
static bool prev_reads(const Plan *P, const IrBlock *body, const IrBlock *blk, bool after, int arr,
                       int t) {
  for (int i = 0; i < blk->n; i++) {
    const IrInstr *in = &blk->ins[i];
    if (in->op == IR_STORE && in->dst == arr) continue; /* the one store of the choice */
    if (in->op == IR_INDEX && in->args[0] == arr) {
      if (in->nidx != 1 || in->idx[0].kind != IX_SINGLE) return false;
      if (after ? in->idx[0].lo != t : !is_prev(P, body, in->idx[0].lo, t)) return false;
      continue;
    }
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++)
      if (!prev_reads(P, body, subs[k], after, arr, t)) return false;
    IrInstr probe = *in;
    probe.then_b.n = probe.else_b.n = probe.cond_b.n = probe.body.n = 0;
    if (reads_reg(&probe, arr)) return false;
  }
  return true;
}

/* In a chain whose state is an array element (`z[t] = zt`, read back as
   z[t - 1]): the loop body b reads the array only so, around the choice b[i]. */
static bool prev_reads_only(const Plan *P, const IrBlock *b, int i, int arr, int t) {
  for (int k = 0; k < b->n; k++) {
    IrBlock one = {1, &b->ins[k]};
    if (!prev_reads(P, b, &one, k > i, arr, t)) return false;
  }
  return true;
}

/* A chain (the forward algorithm's case): the choice at b[i], b the body of
   the loop outer[outer_i] of the model block, whose segment writes exactly
   one register that the next iteration reads before the choice, as a copy
   of the choice (`z_prev = z`), and nothing read after the loop scores with
   it.  The carried register, or -1 with *why. */
static int chain_carry(const Plan *P, const IrInstr *z, const IrBlock *b, int i,
                       const IrBlock *outer, int outer_i, const char **why) {
  int nr = P->p->main.nregs, carry = -1;
  bool *w = gc_alloc_atomic((size_t)nr);
  memset(w, 0, (size_t)nr);
  mark_writes(b, i + 1, w);
  for (int r = 0; r < nr; r++) {
    if (!w[r] || !block_reads(b, 0, i + 1, r)) continue;
    if (carry >= 0) {
      *why = gc_printf("both '%s' and '%s' carry values from its segment to the next iteration",
                       reg_label(P->p, carry), reg_label(P->p, r));
      return -1;
    }
    carry = r;
  }
  if (carry < 0) return -1;
  const IrInstr *copy = NULL, *F = &outer->ins[outer_i];
  Type tc = P->p->main.regtypes[carry];
  bool arr = tc.ndims == 1;
  for (int k = i + 1; k < b->n; k++) {
    const IrInstr *in = &b->ins[k];
    if (in->op == IR_MOVE && in->dst == carry && in->args[0] == z->dst && !arr) copy = in;
    if (in->op == IR_STORE && in->dst == carry && in->args[0] == z->dst && arr && in->nidx == 1 &&
        in->idx[0].kind == IX_SINGLE && in->idx[0].lo == F->var)
      copy = in;
  }
  if (copy && arr && !prev_reads_only(P, b, i, carry, F->var)) copy = NULL;
  if (!copy || count_writes(b, 0, carry) != 1 || tc.ndims > 1 || tc.base != TY_INT) {
    *why = gc_printf("'%s' carries a value from its segment to the next iteration that is not "
                     "a copy of '%s' (a chain's state must be the last choice itself)",
                     reg_label(P->p, carry), z->name);
    return -1;
  }
  /* after the loop: only what does not score may read the carried value */
  bool *t = gc_alloc_atomic((size_t)nr);
  memset(t, 0, (size_t)nr);
  t[carry] = true;
  for (int k = outer_i + 1; k < outer->n; k++) {
    const IrInstr *in = &outer->ins[k];
    bool reads = false;
    for (int r = 0; r < nr && !reads; r++) reads = t[r] && reads_reg(in, r);
    if (!reads) continue;
    if (in->op == IR_OBSERVE || in->op == IR_FACTOR || in->op == IR_CONDITION ||
        in->op == IR_SAMPLE || in->then_b.n || in->else_b.n || in->body.n) {
      *why = gc_printf("the chain's last state '%s' is used at line %d after the loop in a way "
                       "enumeration does not rewrite", reg_label(P->p, carry), in->pos.line);
      return -1;
    }
    if (in->dst >= 0) t[in->dst] = true;
  }
  return carry;
}

static int count_writes(const IrBlock *b, int from, int r);

/* A top-level choice's segment: the instructions that depend neither on the
   choice nor on what a statement that stays in the segment writes, and have
   no effect but their one register (constants, arithmetic, continuous
   latents), are moved before the choice, so that a continuous latent declared
   after a change point (`int s ~ ...; real e ~ ...;`) is not in its segment,
   and what does not change with the choice's value is computed once. */
static void plan_hoist(Plan *P, const IrInstr *z, const IrBlock *b, int from, int site) {
  int nr = P->p->main.nregs;
  bool *t = gc_alloc_atomic((size_t)nr);
  memset(t, 0, (size_t)nr);
  t[z->dst] = true;
  for (int i = from; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    bool pure = in->op == IR_CONST || in->op == IR_MOVE || in->op == IR_UNARY ||
                in->op == IR_BINARY || in->op == IR_INDEX ||
                (in->op == IR_BUILTIN && !in->builtin->uses_rng) ||
                (in->op == IR_SAMPLE && !in->dist.fam->discrete);
    pure = pure && in->dst >= 0 && !in->then_b.n && !in->else_b.n && !in->body.n &&
           count_writes(&P->p->model_b, 0, in->dst) == 1;
    bool reads = false;
    for (int r = 0; r < nr && !reads; r++) reads = t[r] && reads_reg(in, r);
    /* in an earlier choice's segment that z is not in: it stays there */
    for (int k = 0; k < site && pure; k++) {
      const Site *e = &P->sites[k];
      if (e->mask && e->seg == b && e->mask[i] != e->mask[from - 1]) pure = false;
    }
    if (pure && !reads && !hoisted(P, in)) {
      if (P->nhoist == P->caphoist) {
        int cap = 2 * P->caphoist + 16;
        const IrInstr **h = gc_alloc(sizeof *h * (size_t)cap);
        int *hf = gc_alloc_atomic(sizeof *hf * (size_t)cap);
        if (P->nhoist) memcpy(h, P->hoist, sizeof *h * (size_t)P->nhoist);
        if (P->nhoist) memcpy(hf, P->hoist_for, sizeof *hf * (size_t)P->nhoist);
        P->hoist = h, P->hoist_for = hf, P->caphoist = cap;
      }
      P->hoist_for[P->nhoist] = site;
      P->hoist[P->nhoist++] = in;
      continue;
    }
    if (hoisted(P, in)) continue; /* before an earlier choice already */
    IrBlock one = {1, (IrInstr *)in};
    mark_writes(&one, 0, t);
  }
}

/* A discrete SAMPLE at b[i]. */
static void plan_sample(Plan *P, const IrInstr *in, const IrBlock *b, int i, bool top,
                        const IrBlock *outer, int outer_i) {
  int kind = 0;
  const char *cost = NULL;
  const char *why = support_of(P, in, &kind, &cost);
  Type t = P->p->main.regtypes[in->dst];
  if (!why && t.ndims > 1) why = "it is a multi-dimensional array (not enumerated yet)";
  int loop = -1;
  if (!why && t.ndims == 1 && !top)
    why = "it is an array drawn inside a loop (not enumerated yet)";
  if (!why && t.ndims == 1) loop = element_loop(P, in, b, i, &why);
  const IrBlock *seg = b;
  int from = i + 1;
  if (!why && loop >= 0) {
    const IrInstr *F = &b->ins[loop];
    if (!only_elements(&F->body, in->dst, F->var))
      why = gc_printf("the loop at line %d reads '%s' other than as '%s[n]' with n its variable",
                      F->pos.line, in->name, in->name);
    seg = &F->body;
    for (from = 0; !why && from < seg->n && !reads_reg(&seg->ins[from], in->dst); from++) {}
  }
  int carry = -1;
  const bool *mask = NULL;
  if (!why && !top && loop < 0) carry = chain_carry(P, in, b, i, outer, outer_i, &why);
  if (!why && carry >= 0 && kind == SUP_RANGE)
    why = "it is a chain's state with declared bounds (not enumerated yet)";
  if (!why && carry >= 0) { /* the chain's own segment check: the carried copy is expected */
    why = segment_ok(P, in, seg, from, carry, NULL);
    if (!why) {
      int nr = P->p->main.nregs;
      bool *w = gc_alloc_atomic((size_t)nr);
      memset(w, 0, (size_t)nr);
      mark_writes(b, i + 1, w);
      for (int r = 0; r < nr && !why; r++)
        if (w[r] && r != carry && block_reads(outer, outer_i + 1, outer->n, r))
          why = gc_printf("'%s', which its segment writes, is read after the loop", reg_label(P->p, r));
      for (int k = 0; k < i && !why; k++) /* the part before the choice runs once per state */
        if (b->ins[k].op == IR_SAMPLE || (b->ins[k].op == IR_CALL && P->p->funcs[b->ins[k].callee].stochastic))
          why = gc_printf("a choice at line %d precedes it in its iteration", b->ins[k].pos.line);
    }
  } else if (!why) {
    int site = P->pub->n;
    if (top && loop < 0) plan_hoist(P, in, seg, from, site);
    if (loop < 0) mask = segment_mask(P, in, seg, from);
    why = segment_ok(P, in, seg, from, -1, mask);
  }
  if (!why && loop >= 0) why = leaks(P, seg, from, b, loop + 1, seg, from, in->name);
  else if (!why && !top && carry < 0) why = leaks(P, b, i + 1, outer, outer_i + 1, b, i, in->name);
  EnumLatent *L = new_latent(P, in, why);
  L->ok = !why;
  L->cost = cost;
  Site *s = &P->sites[P->pub->n - 1];
  s->seg = seg, s->from = from, s->loop = loop >= 0 ? &b->ins[loop] : NULL, s->top = top;
  s->mask = carry < 0 ? mask : NULL;
  s->parent = -1;
  if (!top && loop < 0) s->outer = &outer->ins[outer_i];
  s->kind = kind;
  if (carry >= 0) {
    s->chain = &outer->ins[outer_i];
    s->at = i;
    s->carry = carry;
    s->carry_arr = P->p->main.regtypes[carry].ndims == 1;
    L->cost = gc_printf("%s x %s", cost, cost);
    L->chain = true;
    L->fused = chain_fusable(P, s);
  }
}

/* Is r read anywhere in b but b's own [skip_from, skip_to) (NULL skip: all)? */
static const IrInstr *read_outside(const IrBlock *b, const IrBlock *skip, int skip_from,
                                   int skip_to, int r) {
  for (int i = 0; i < b->n; i++) {
    if (b == skip && i >= skip_from && i < skip_to) continue;
    const IrInstr *in = &b->ins[i];
    if (ir_instr_reads_here(in, r)) return in;
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++) {
      const IrInstr *x = read_outside(subs[k], skip, skip_from, skip_to, r);
      if (x) return x;
    }
  }
  return NULL;
}

/* A scalar under an if or in a loop in a loop: its segment is the set of
   the rest of its block that depends on it (segment_mask), and nothing else
   in the model block may read the choice or what the segment writes (it
   would see only the last value summed over: a chain, a running value, a
   read after the branch). */
static void plan_nested(Plan *P, const IrInstr *in, const IrBlock *b, int i) {
  int kind = 0, site = P->pub->n;
  const char *cost = NULL;
  const char *why = support_of(P, in, &kind, &cost);
  if (!why && P->p->main.regtypes[in->dst].ndims)
    why = P->in_branch ? "it is an array drawn under an if (not enumerated yet)"
                       : "it is an array drawn inside nested loops (not enumerated yet)";
  bool *mask = NULL;
  if (!why) {
    mask = segment_mask(P, in, b, i + 1);
    why = segment_ok(P, in, b, i + 1, -1, mask);
  }
  int nr = P->p->main.nregs;
  bool *w = gc_alloc_atomic((size_t)nr);
  memset(w, 0, (size_t)nr);
  w[in->dst] = true;
  for (int k = i + 1; !why && k < b->n; k++)
    if (mask[k]) mark_writes(&(IrBlock){1, &b->ins[k]}, 0, w);
  for (int r = 0; r < nr && !why; r++) {
    const IrInstr *x = w[r] ? read_outside(&P->p->model_b, b, i, b->n, r) : NULL;
    if (x)
      why = gc_printf("'%s', which %s, is read outside its segment (line %d): only the last "
                      "value summed over would reach it", reg_label(P->p, r),
                      r == in->dst ? "is the choice" : "its segment writes", x->pos.line);
  }
  (void)site;
  EnumLatent *L = new_latent(P, in, why);
  L->ok = !why;
  L->cost = cost;
  Site *s = &P->sites[P->pub->n - 1];
  s->seg = b, s->from = i + 1, s->kind = kind, s->mask = mask, s->parent = -1;
  s->outer = P->loop;
  s->nested = true;
}

static void plan_other(Plan *P, const IrBlock *b, const char *where, int depth) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_SAMPLE && in->dist.fam->discrete) {
      EnumLatent *L = new_latent(P, in, gc_printf("it is drawn %s", where));
      L->ok = false;
    }
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++) plan_other(P, subs[k], where, depth + 1);
  }
}

/* Does the block hold a discrete choice, at any depth? */
static bool holds_discrete(const IrProgram *p, const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_SAMPLE && in->dist.fam->discrete) return true;
    if (in->op == IR_CALL && p->funcs[in->callee].stochastic) return true;
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++)
      if (holds_discrete(p, subs[k])) return true;
  }
  return false;
}

/* A factorial chain: the loop F = b[fi] of the model block holds, at its
   body's top level, exactly two discrete scalars z1, z2 (and no other
   discrete choice), each carried to the next iteration in a local copy of
   its own (`z1_prev = z1; z2_prev = z2`), their distributions depending on
   their previous states (or on both), the observations on both: a factorial
   HMM.  Summed by the forward algorithm over the product state (K1 K2
   states, (K1 K2)^2 terms a step; emit_fchain).  False when the loop does
   not have this shape (each choice is then planned alone, and says why);
   true when it has, with both planned (enumerated, or with the reason). */
static bool plan_factorial(Plan *P, const IrBlock *b, int fi) {
  const IrInstr *F = &b->ins[fi];
  const IrBlock *body = &F->body;
  const IrProgram *p = P->p;
  int at[2], n = 0;
  for (int i = 0; i < body->n; i++) {
    const IrInstr *in = &body->ins[i];
    if (in->op == IR_SAMPLE && in->dist.fam->discrete) {
      if (n == 2) return false;
      at[n++] = i;
      continue;
    }
    if (holds_discrete(p, &(IrBlock){1, (IrInstr *)in})) return false;
  }
  if (n != 2) return false;
  const IrInstr *z[2] = {&body->ins[at[0]], &body->ins[at[1]]};
  int carry[2], kind[2];
  const char *cost[2];
  for (int c = 0; c < 2; c++) {
    if (support_of(P, z[c], &kind[c], &cost[c]) || p->main.regtypes[z[c]->dst].ndims ||
        kind[c] == SUP_RANGE)
      return false;
    carry[c] = -1;
    for (int i = at[c] + 1; i < body->n && carry[c] < 0; i++) {
      const IrInstr *in = &body->ins[i];
      if (in->op == IR_MOVE && in->args[0] == z[c]->dst) carry[c] = in->dst;
    }
    if (carry[c] < 0) return false;
    Type tc = p->main.regtypes[carry[c]];
    if (tc.ndims || tc.base != TY_INT || count_writes(body, 0, carry[c]) != 1 ||
        !block_reads(body, 0, at[c] + 1, carry[c]))
      return false; /* one write in the loop, read before its choice */
  }
  if (carry[0] == carry[1]) return false;
  /* the shape is a factorial chain's: from here on, a reason when it fails */
  const char *why = NULL;
  int nr = p->main.nregs;
  bool *w = gc_alloc_atomic((size_t)nr), *def = gc_alloc_atomic((size_t)nr);
  memset(w, 0, (size_t)nr);
  memset(def, 0, (size_t)nr);
  mark_writes(body, at[0] + 1, w);
  for (int r = 0; r < nr && !why; r++) /* the carries are the only state between steps */
    if (w[r] && r != carry[0] && r != carry[1] && block_reads(body, 0, at[0] + 1, r))
      why = gc_printf("'%s' carries a value from its segment to the next iteration besides "
                      "'%s' and '%s'", reg_label(p, r), reg_label(p, carry[0]), reg_label(p, carry[1]));
  for (int k = 0; k < at[0] && !why; k++) /* the part before the choices runs once per state */
    if (body->ins[k].op == IR_SAMPLE)
      why = gc_printf("a choice at line %d precedes it in its iteration", body->ins[k].pos.line);
  for (int r = 0; r < nr && !why; r++)
    if ((w[r] || r == carry[0] || r == carry[1]) && block_reads(b, fi + 1, b->n, r))
      why = gc_printf("'%s', which its segment writes, is read after the loop", reg_label(p, r));
  w[carry[0]] = w[carry[1]] = false; /* set by the rewrite per previous state */
  def[z[0]->dst] = true;
  IrBlock mid = {at[1] - at[0] - 1, body->ins + at[0] + 1};
  IrBlock rest = {body->n - at[1] - 1, body->ins + at[1] + 1};
  if (!why) why = walk_segment(P, z[0], &mid, 0, def, w, NULL, false);
  def[z[1]->dst] = true;
  if (!why) why = walk_segment(P, z[1], &rest, 0, def, w, NULL, false);
  int first = P->pub->n;
  for (int c = 0; c < 2; c++) {
    EnumLatent *L = new_latent(P, z[c], why);
    L->ok = !why;
    L->chain = true;
    L->cost = gc_printf("(%s x %s) x (%s x %s)", cost[0], cost[1], cost[0], cost[1]);
    L->partner = z[1 - c]->name;
    L->partner1 = first + (1 - c) + 1;
    Site *s = &P->sites[P->pub->n - 1];
    s->seg = body, s->from = at[c] + 1, s->top = false, s->kind = kind[c];
    s->chain = F, s->at = at[c], s->carry = carry[c], s->parent = -1;
    s->partner1 = first + (1 - c) + 1;
  }
  return true;
}

static void plan_block(Plan *P, const IrBlock *b, bool top, const IrBlock *outer, int outer_i,
                       int depth) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_FOR && top && depth == 0 && !P->in_branch && plan_factorial(P, b, i))
      continue;
    if (in->op == IR_SAMPLE && in->dist.fam->discrete) {
      if (P->in_branch || depth >= 2) plan_nested(P, in, b, i);
      else plan_sample(P, in, b, i, top, outer, outer_i);
    }
    /* a loop in a loop, and the branches of an if: plan_nested's shapes
       (no chains there) */
    const IrInstr *was = P->loop;
    if (in->op == IR_FOR) {
      P->loop = in;
      plan_block(P, &in->body, false, b, i, depth + 1);
      P->loop = was;
    }
    if (in->op == IR_IF) {
      bool br = P->in_branch;
      P->in_branch = true;
      plan_block(P, &in->then_b, false, outer, outer_i, depth);
      plan_block(P, &in->else_b, false, outer, outer_i, depth);
      P->in_branch = br;
    }
    if (in->op == IR_WHILE) plan_other(P, &in->body, "inside a while loop", 0);
  }
}

static IrProgram *rewrite(const Plan *P, bool marg);

/* A discrete scalar in another's segment is summed out inside it (the
   innermost such segment is its parent); the outer one is enumerated only
   when the inner one is, and is neither a chain nor an array. */
static bool holds(const IrInstr *in, const IrInstr *x);

static void plan_nesting(Plan *P) {
  for (int i = P->pub->n - 1; i >= 0; i--) {
    Site *s = &P->sites[i];
    EnumLatent *L = &P->pub->lat[i];
    for (int k = i - 1; k >= 0; k--) {
      const Site *e = &P->sites[k];
      if (!e->mask) continue;
      /* in a loop at the top level of its segment (a chain's step, a
         per-datapoint choice): summed inside its sum per value */
      const IrInstr *deep = NULL;
      for (int q = e->from; q < e->seg->n && !deep && !e->nested; q++)
        if (e->mask[q] && &e->seg->ins[q] != s->ins && holds(&e->seg->ins[q], s->ins))
          deep = &e->seg->ins[q];
      if (!deep && (s->ins < e->seg->ins || s->ins >= e->seg->ins + e->seg->n ||
                    !e->mask[s->ins - e->seg->ins]))
        continue;
      s->parent = k;
      EnumLatent *E = &P->pub->lat[k];
      const char *why = !L->ok ? "is not enumerated"
                        : s->loop ? "is an array, not enumerated inside another's segment"
                        : deep && !(e->top && deep->op == IR_FOR &&
                                    (s->chain == deep || (!s->nested && s->outer == deep)))
                            ? "is not directly in a loop of its segment (not enumerated yet)"
                        : !deep && s->chain ? "is a chain, not enumerated inside another's segment"
                                            : NULL;
      if (why && E->ok) {
        E->ok = false;
        E->why = gc_printf("%s:%d:%d: the discrete latent '%s' (line %d) in its segment %s",
                           E->pos.file ? E->pos.file : P->p->file, E->pos.line, E->pos.col,
                           L->name, L->pos.line, why);
      }
      L->within = E->name;
      L->parent = k;
      break;
    }
  }
}

/* ---- variable elimination: the groups ------------------------------------- */

/* Does the instruction score (an observation, a factor, a condition, a
   choice), here or in a nested block? */
static bool has_score(const IrInstr *in) {
  if (in->op == IR_OBSERVE || in->op == IR_FACTOR || in->op == IR_CONDITION || in->op == IR_SAMPLE)
    return true;
  const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < subs[k]->n; i++)
      if (has_score(&subs[k]->ins[i])) return true;
  return false;
}

/* Does the instruction hold x (itself or nested)? */
static bool holds(const IrInstr *in, const IrInstr *x) {
  if (in == x) return true;
  const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < subs[k]->n; i++)
      if (holds(&subs[k]->ins[i], x)) return true;
  return false;
}

static int bits(unsigned x) { return __builtin_popcount(x); }

/* Is a categorical member's support size fixed whatever the others' values:
   its parameter not written in the segment, or an element of an array that
   is not (arrays are rectangular)?  Then its size is known before the
   tables are made. */
static bool size_fixed(const Plan *P, const Group *g, const Site *s, const bool *w) {
  if (s->kind != SUP_CATEGORICAL) return true;
  int r = s->ins->dist.params[0];
  if (!w[r]) return true;
  const IrInstr *d = NULL;
  int nd = 0;
  for (int i = g->from; i < g->b->n; i++)
    if (g->mask[i] && g->b->ins[i].dst == r) d = &g->b->ins[i], nd++;
  return nd == 1 && count_writes(g->b, g->from, r) == 1 && d->op == IR_INDEX && d->nidx == 1 &&
         d->idx[0].kind == IX_SINGLE && !w[d->args[0]] && P->p->main.regtypes[d->args[0]].ndims == 1;
}

/* The scopes of the segment's instructions: a member's choice depends on
   itself and what its parameters depend on; any other instruction on what
   the registers it reads depend on, and what it writes then does too (a
   union over the writes: a scope too large costs time, never accuracy). */
static void group_scopes(const Plan *P, Group *g) {
  const IrBlock *b = g->b;
  size_t nr = (size_t)P->p->main.nregs;
  unsigned *tm = gc_alloc_atomic(sizeof *tm * nr);
  memset(tm, 0, sizeof *tm * nr);
  g->isc = gc_alloc_atomic(sizeof *g->isc * (size_t)(b->n + 1));
  g->iscore = gc_alloc_atomic((size_t)b->n + 1);
  memset(g->isc, 0, sizeof *g->isc * (size_t)(b->n + 1));
  memset(g->iscore, 0, (size_t)b->n + 1);
  bool *w = gc_alloc_atomic(nr);
  for (int i = g->from - 1; i < b->n; i++) {
    if (i >= g->from && !g->mask[i]) continue;
    const IrInstr *in = &b->ins[i];
    int j = -1;
    for (int k = 0; k < g->m; k++)
      if (g->at[k] == i) j = k;
    unsigned sc = 0;
    for (size_t r = 0; r < nr; r++)
      if (tm[r] && reads_reg(in, (int)r)) sc |= tm[r];
    if (j >= 0) {
      sc |= 1u << j;
      tm[in->dst] = 1u << j;
    } else {
      memset(w, 0, nr);
      mark_writes(&(IrBlock){1, (IrInstr *)in}, 0, w);
      for (size_t r = 0; r < nr; r++)
        if (w[r]) tm[r] |= sc;
      g->iscore[i] = has_score(in);
    }
    g->isc[i] = sc;
  }
}

/* The min-fill order over the group's interaction graph (members linked
   when a factor holds both): eliminate the one whose neighbours lack the
   fewest links among themselves, then the fewest neighbours, then the
   latest (inner sums first). */
static void group_order(Group *g) {
  unsigned adj[GROUP_MAX] = {0};
  for (int i = g->from - 1; i < g->b->n; i++) {
    unsigned sc = g->isc[i];
    bool factor = i == g->from - 1 || g->iscore[i];
    for (int k = 0; k < g->m; k++) factor |= g->at[k] == i;
    if (!factor || (i >= g->from && !g->mask[i])) continue;
    for (int j = 0; j < g->m; j++)
      if (sc >> j & 1) adj[j] |= sc & ~(1u << j);
  }
  unsigned left = (1u << g->m) - 1;
  for (int s = 0; s < g->m; s++) {
    int best = -1, bf = 0, bd = 0;
    for (int v = g->m - 1; v >= 0; v--) {
      if (!(left >> v & 1)) continue;
      unsigned nb = adj[v] & left;
      int fill = 0;
      for (int a = 0; a < g->m; a++)
        if (nb >> a & 1) fill += bits(nb & ~adj[a] & ~(1u << a));
      if (best < 0 || fill < bf || (fill == bf && bits(nb) < bd)) best = v, bf = fill, bd = bits(nb);
    }
    unsigned nb = adj[best] & left;
    g->order[s] = best;
    g->step[s] = nb | 1u << best;
    for (int a = 0; a < g->m; a++)
      if (nb >> a & 1) adj[a] |= nb & ~(1u << a);
    left &= ~(1u << best);
  }
}

/* The groups: each enumerated root scalar (a segment set, no parent) with
   the scalars summed inside it, when they all lie at the top level of its
   segment, no other choice lies in it, their supports' sizes are fixed, and
   the order's largest factor is over fewer latents than the deepest
   nesting.  Others keep the nested sums. */
static void plan_groups(Plan *P) {
  EnumPlan *pl = P->pub;
  for (int r = 0; r < pl->n; r++) {
    Site *R = &P->sites[r];
    if (!pl->lat[r].ok || !R->mask || R->parent >= 0 || R->chain || R->loop) continue;
    Group g = {.b = R->seg, .from = R->from, .mask = R->mask};
    bool fits = true;
    for (int i = r; i < pl->n && fits; i++) {
      int a = i;
      while (a >= 0 && a != r) a = P->sites[a].parent;
      const Site *s = &P->sites[i];
      if (a != r) { /* not a member: it must not lie in the segment */
        for (int k = R->from; k < R->seg->n && fits; k++)
          fits = !R->mask[k] || !holds(&R->seg->ins[k], s->ins);
        fits = fits && !(s->loop && s->seg == R->seg);
        continue;
      }
      int at = (int)(s->ins - R->seg->ins);
      fits = g.m < GROUP_MAX && pl->lat[i].ok && s->seg == R->seg && at >= 0 && at < R->seg->n &&
             !s->chain && !s->loop && count_writes(&P->p->model_b, 0, s->ins->dst) == 1 &&
             P->p->main.regtypes[s->ins->dst].ndims == 0;
      if (fits) g.mem[g.m] = i, g.at[g.m++] = at;
    }
    if (!fits || g.m < 2) continue;
    int nr = P->p->main.nregs;
    bool *w = gc_alloc_atomic((size_t)nr);
    memset(w, 0, (size_t)nr);
    for (int k = R->from; k < R->seg->n; k++)
      if (R->mask[k]) mark_writes(&(IrBlock){1, &R->seg->ins[k]}, 0, w);
    for (int j = 0; j < g.m && fits; j++) fits = size_fixed(P, &g, &P->sites[g.mem[j]], w);
    if (!fits) continue;
    group_scopes(P, &g);
    unsigned seen[GROUP_MAX + 9];
    int ns = 0;
    for (int i = g.from; i < g.b->n && ns <= GROUP_MAX + 8; i++) {
      bool dup = false;
      for (int k = 0; k < ns; k++) dup |= seen[k] == g.isc[i];
      if (g.mask[i] && g.iscore[i] && !dup) seen[ns++] = g.isc[i];
    }
    if (ns > GROUP_MAX + 8) continue; /* more tables than TAB_MAX holds: nested sums */
    group_order(&g);
    /* nested sums cost the product of the sizes along the deepest nesting,
       elimination the product over its largest step: where the step is no
       smaller (b | a alone, a triangle) the nested sums are kept, having
       no tables to fill */
    int deepest = 0, widest = 0;
    for (int j = 0; j < g.m; j++) {
      int dpt = 0;
      for (int a = g.mem[j]; a >= 0; a = P->sites[a].parent) dpt++;
      if (dpt > deepest) deepest = dpt;
      if (bits(g.step[j]) > widest) widest = bits(g.step[j]);
    }
    if (widest >= deepest) continue;
    Group *ng = gc_alloc(sizeof *ng * (size_t)(P->ngroups + 1));
    if (P->ngroups) memcpy(ng, P->groups, sizeof *ng * (size_t)P->ngroups);
    ng[P->ngroups] = g;
    P->groups = ng;
    P->ngroups++;
    for (int j = 0; j < g.m; j++) { /* the factor each is summed in: its step's */
      int s = 0;
      while (g.order[s] != j) s++;
      EnumLatent *L = &pl->lat[g.mem[j]];
      int *sc = gc_alloc_atomic(sizeof(int) * GROUP_MAX), n = 0;
      const char *within = NULL;
      for (int k = 0; k < g.m; k++)
        if (k != j && (g.step[s] >> k & 1)) {
          sc[n++] = g.mem[k];
          within = within ? gc_printf("%s', '%s", within, pl->lat[g.mem[k]].name)
                          : pl->lat[g.mem[k]].name;
        }
      L->nsc = n, L->sc = sc, L->within = within;
      P->sites[g.mem[j]].group1 = P->ngroups;
    }
  }
  /* the others: the enclosing sums' latents */
  for (int i = 0; i < pl->n; i++) {
    EnumLatent *L = &pl->lat[i];
    if (P->sites[i].group1 || L->parent < 0) continue;
    int n = 0;
    for (int k = L->parent; k >= 0; k = pl->lat[k].parent) n++;
    int *sc = gc_alloc_atomic(sizeof(int) * (size_t)n);
    for (int k = L->parent, q = n; k >= 0; k = pl->lat[k].parent) sc[--q] = k;
    L->nsc = n, L->sc = sc;
  }
  /* the order they are summed out in: inner sums first, a group's in its order */
  int *el = gc_alloc_atomic(sizeof(int) * (size_t)(pl->n + 1)), ne = 0;
  bool any = false;
  for (int i = pl->n - 1; i >= 0; i--) {
    if (!pl->lat[i].ok) continue;
    any |= pl->lat[i].nsc > 0;
    int gi = P->sites[i].group1 - 1;
    if (gi < 0) {
      el[ne++] = i;
      continue;
    }
    const Group *g = &P->groups[gi];
    if (g->mem[g->m - 1] != i) continue; /* written out at its last member */
    for (int s = 0; s < g->m; s++) el[ne++] = g->mem[g->order[s]];
  }
  pl->elim = any ? el : NULL;
  pl->nelim = any ? ne : 0;
}

static EnumPlan *plan_program(const IrProgram *p, const IrAnalysis *a, bool inlined) {
  if (!a->has_discrete) return NULL;
  /* discrete latents in user functions: planned on the program with its
     calls inlined (main's registers unchanged, so the data block's values
     still fit) */
  const char *no_inline = NULL;
  for (int i = 0; !inlined && i < a->nlatents; i++)
    if (a->latents[i].kind == LK_DISCRETE && a->latents[i].in_function) {
      IrProgram *q = ir_inline_calls(p, &no_inline);
      if (!q) break;
      EnumPlan *pl = plan_program(q, ir_analyze(q), true);
      if (pl) pl->ndata = p->main.nregs;
      return pl;
    }
  Plan P = {.p = p};
  P.pub = gc_alloc(sizeof *P.pub);
  P.pub->largest = -1;
  P.pub->src = p;
  P.pub->ndata = p->main.nregs;
  P.written = gc_alloc_atomic((size_t)p->main.nregs);
  memset(P.written, 0, (size_t)p->main.nregs);
  mark_writes(&p->model_b, 0, P.written);
  plan_block(&P, &p->model_b, true, NULL, 0, 0);
  plan_nesting(&P);
  /* one line for each discrete latent in a function that cannot be inlined */
  for (int i = 0; no_inline && i < a->nlatents; i++) {
    const IrLatentInfo *li = &a->latents[i];
    if (li->kind != LK_DISCRETE || !li->in_function) continue;
    IrInstr *fake = gc_alloc(sizeof *fake);
    fake->name = li->name, fake->pos = li->pos;
    EnumLatent *L = new_latent(&P, fake, gc_printf("it is drawn in a user function, which cannot "
                                                   "be inlined (%s)", no_inline));
    L->ok = false;
    L->instr = NULL;
  }
  /* discrete choices in user functions are not in the model block's list */
  bool all = P.pub->n > 0 && !a->has_string && a->fixed_structure;
  int ndisc = 0;
  for (int i = 0; i < a->nlatents; i++) ndisc += a->latents[i].kind == LK_DISCRETE;
  if (ndisc > 0 && P.pub->n == 0) all = false;
  for (int i = 0; i < a->nlatents; i++)
    if (a->latents[i].kind == LK_DISCRETE && a->latents[i].in_function) all = false;
  for (int i = 0; i < P.pub->n; i++) all = all && P.pub->lat[i].ok;
  /* the draws pass runs the model block again without the continuous
     choices: their registers must still hold the draw's values */
  for (int i = 0; all && i < a->nlatents; i++)
    if (a->latents[i].kind == LK_CONTINUOUS && (a->latents[i].in_loop || a->latents[i].in_function)) {
      all = false;
      for (int k = 0; k < P.pub->n; k++) {
        EnumLatent *L = &P.pub->lat[k];
        L->ok = false;
        L->why = gc_printf("%s:%d:%d: the continuous latent '%s' is declared inside a loop or a "
                           "function, where the draws of '%s' cannot replay it (not yet)",
                           a->latents[i].pos.file ? a->latents[i].pos.file : p->file,
                           a->latents[i].pos.line, a->latents[i].pos.col, a->latents[i].name,
                           L->name);
      }
    }
  if (p->has_guide || a->nparams > 0) all = false;
  plan_groups(&P);
  P.pub->all = all;
  if (all) P.pub->prog = rewrite(&P, false), P.pub->prog_marg = rewrite(&P, true);
  return P.pub;
}

EnumPlan *enum_plan(const IrProgram *p, const IrAnalysis *a) { return plan_program(p, a, false); }

/* ---- sizes ------------------------------------------------------------------- */

static bool int_at(const IrProgram *p, const Value *R, int r, long *v) {
  const IrInstr *c = NULL;
  for (int i = 0; i < p->model_b.n && !c; i++)
    if (p->model_b.ins[i].op == IR_CONST && p->model_b.ins[i].dst == r) c = &p->model_b.ins[i];
  Value x = c ? c->imm : R[r];
  if (x.k != V_INT) return false;
  *v = (long)x.i;
  return true;
}

/* The number of elements of register r's value: a data value, a latent's
   declared size, or a copy or element of such. */
static long numel_of(const IrProgram *p, const Value *R, const IrBlock *b, int r, int depth) {
  if (depth > 8) return -1;
  if (R[r].k >= V_ARR) return (long)val_numel(R[r]);
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->dst == r) {
      long v;
      if (in->op == IR_SAMPLE && in->nsizes >= 1 && int_at(p, R, in->sizes[in->nsizes - 1], &v))
        return v;
      if (in->op == IR_MOVE) return numel_of(p, R, &p->model_b, in->args[0], depth + 1);
      if (in->op == IR_INDEX && in->nidx >= 1 && R[in->args[0]].k < V_ARR) {
        /* an element of a latent array of vectors (`simplex[K] G[K]`): its
           declared size */
        const IrInstr *dd = find_def(&p->model_b, in->args[0]);
        if (dd && dd->op == IR_SAMPLE && dd->nsizes == in->nidx + 1 &&
            int_at(p, R, dd->sizes[dd->nsizes - 1], &v))
          return v;
      }
      if (in->op == IR_INDEX && in->nidx >= 1) { /* an element of an array (of arrays) */
        Value base = R[in->args[0]];
        int k = 0;
        for (; k < in->nidx && in->idx[k].kind == IX_SINGLE && base.k == V_ARR && base.a->n > 0; k++)
          base = base.a->e[0];
        if (k == in->nidx && k > 0) return (long)val_numel(base);
      }
    }
    const IrBlock *subs[3] = {&in->then_b, &in->else_b, &in->body};
    for (int k = 0; k < 3; k++) {
      long v = numel_of(p, R, subs[k], r, depth + 1);
      if (v >= 0) return v;
    }
  }
  return -1;
}

void enum_sizes(EnumPlan *pl, const Value *R) {
  if (!pl || !R) return;
  const IrProgram *p = pl->src;
  if (p->main.nregs > pl->ndata) { /* inlined: the callees' registers hold nothing yet */
    Value *R2 = gc_alloc(sizeof *R2 * (size_t)p->main.nregs);
    memcpy(R2, R, sizeof *R2 * (size_t)pl->ndata);
    R = R2;
  }
  pl->largest = 0;
  for (int i = 0; i < pl->n; i++) {
    EnumLatent *L = &pl->lat[i];
    const IrInstr *in = L->instr;
    if (!in) continue; /* in a function that cannot be inlined: not enumerated */
    const int *pr = in->dist.params;
    const char *f = in->dist.fam->name;
    long a, b;
    L->size = -1;
    if (!strncmp(f, "bernoulli", 9)) L->size = 2;
    else if (!strncmp(f, "categorical", 11)) L->size = numel_of(p, R, &p->model_b, pr[0], 0);
    else if (!strcmp(f, "discrete_uniform") && int_at(p, R, pr[0], &a) && int_at(p, R, pr[1], &b))
      L->size = b - a + 1;
    else if (!strcmp(f, "binomial") && int_at(p, R, pr[0], &a)) L->size = a + 1;
    int lr, hr;
    long lk, hk;
    if (in->con.kind != CON_NONE && range_of(in, &lr, &lk, &hr, &hk)) {
      L->size = -1;
      if ((lr < 0 || int_at(p, R, lr, &lk)) && (hr < 0 || int_at(p, R, hr, &hk)))
        L->size = hk >= lk ? hk - lk + 1 : 0;
    }
    if (L->chain && L->size > 0) L->size *= L->size; /* K x K per step */
  }
  for (int i = 0; i < pl->n; i++) { /* the factor it is summed in: with sc's */
    EnumLatent *L = &pl->lat[i];
    L->joint = L->size;
    for (int k = 0; k < L->nsc && L->joint >= 0; k++) {
      long z = pl->lat[L->sc[k]].size;
      L->joint = z < 0 ? -1 : L->joint * z;
    }
    if (L->partner1 && L->joint >= 0) { /* the product state's step */
      long z = pl->lat[L->partner1 - 1].size;
      L->joint = z < 0 ? -1 : L->joint * z;
    }
    if (!L->ok) continue;
    if (L->joint < 0) pl->largest = -1;
    else if (pl->largest >= 0 && L->joint > pl->largest) pl->largest = L->joint;
  }
}

/* ---- the rewrite ------------------------------------------------------------- */

typedef struct Code {
  int n, cap;
  IrInstr *ins;
} Code;

typedef struct Rw {
  const Plan *P;
  IrProgram *q;
  int nregs, capregs;
  Type *types;
  const char **names;
  const Site *entered; /* the element form's segment being copied for its draw */
  bool marg;           /* --enum-marginals: the pr_ outputs */
  bool hoisting;       /* copying a hoisted instruction (Plan.hoist) */
  const IrBlock *mseg; /* the block whose set segment is being copied, */
  const bool *mmask;   /* and that segment's instructions */
  bool sizing;         /* copying a loop's first part for a support's size: the
                          enumerated choices there take their first value */
  int *hK, *hV;        /* per site: its support's size and log probabilities made
                          before its loop (hoist_before), -1 when not */
  int *pr;             /* per site: its pr_ output's register, -1 before it has one */
  const Site *fix;     /* a factorial chain's second choice, copied with its value */
  int fixv;            /* given (fixv): its log probability added (M_ACC), or */
  bool fixpoint;       /* made a point choice (the draws pass's replay) */
  int nout;
  IrOutput *out;
} Rw;

enum { M_DENSITY, M_ACC, M_DRAW };

static int new_reg(Rw *W, Type t) {
  if (W->nregs == W->capregs) {
    int cap = 2 * W->capregs + 16;
    Type *t2 = gc_alloc_atomic(sizeof *t2 * (size_t)cap);
    const char **n2 = gc_alloc(sizeof *n2 * (size_t)cap);
    memcpy(t2, W->types, sizeof *t2 * (size_t)W->nregs);
    memcpy(n2, W->names, sizeof *n2 * (size_t)W->nregs);
    W->types = t2, W->names = n2, W->capregs = cap;
  }
  W->types[W->nregs] = t;
  W->names[W->nregs] = NULL;
  return W->nregs++;
}

static IrInstr *emit(Code *c, int op, SrcPos pos) {
  if (c->n == c->cap) {
    int cap = 2 * c->cap + 8;
    IrInstr *n2 = gc_alloc(sizeof *n2 * (size_t)cap);
    if (c->n) memcpy(n2, c->ins, sizeof *n2 * (size_t)c->n);
    c->ins = n2, c->cap = cap;
  }
  IrInstr *in = &c->ins[c->n++];
  memset(in, 0, sizeof *in);
  in->op = (uint8_t)op;
  in->pos = pos;
  in->dst = -1;
  in->con.lower = in->con.upper = -1;
  in->var = -1;
  return in;
}

static IrBlock done(Code *c) { return (IrBlock){c->n, c->ins}; }

static void append(Code *c, IrBlock b) {
  for (int i = 0; i < b.n; i++) *emit(c, IR_CONST, b.ins[i].pos) = b.ins[i];
}

static int *regs(int n, ...) {
  int *a = gc_alloc_atomic(sizeof(int) * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) a[i] = va_arg(ap, int);
  va_end(ap);
  return a;
}

static int k_int(Rw *W, Code *c, SrcPos pos, long v) {
  IrInstr *in = emit(c, IR_CONST, pos);
  in->dst = new_reg(W, ty_make(TY_INT, 0));
  in->imm = val_int(v);
  return in->dst;
}

static int k_real(Rw *W, Code *c, SrcPos pos, double v) {
  IrInstr *in = emit(c, IR_CONST, pos);
  in->dst = new_reg(W, ty_make(TY_REAL, 0));
  in->imm = val_real(v);
  return in->dst;
}

static int binop(Rw *W, Code *c, SrcPos pos, IrOp op, int a, int b, Type t) {
  IrInstr *in = emit(c, IR_BINARY, pos);
  in->sub = (uint8_t)op;
  in->dst = new_reg(W, t);
  in->nargs = 2;
  in->args = regs(2, a, b);
  return in->dst;
}

/* dst = name(args...), or into the given dst (>= 0). */
static int call_builtin(Rw *W, Code *c, SrcPos pos, const char *name, Type t, int dst, int n,
                        const int *args) {
  IrInstr *in = emit(c, IR_BUILTIN, pos);
  in->builtin = builtin_lookup(name);
  in->dst = dst >= 0 ? dst : new_reg(W, t);
  in->nargs = n;
  in->args = gc_alloc_atomic(sizeof(int) * (size_t)(n ? n : 1));
  memcpy(in->args, args, sizeof(int) * (size_t)n);
  return in->dst;
}

static int index1(Rw *W, Code *c, SrcPos pos, int base, int i, Type t) {
  IrInstr *in = emit(c, IR_INDEX, pos);
  in->dst = new_reg(W, t);
  in->nargs = 1;
  in->args = regs(1, base);
  in->nidx = 1;
  in->idx = gc_alloc_atomic(sizeof(IrIndex));
  in->idx[0] = (IrIndex){IX_SINGLE, i, -1};
  return in->dst;
}

static void store1(Code *c, SrcPos pos, int base, int i, int v) {
  IrInstr *in = emit(c, IR_STORE, pos);
  in->dst = base;
  in->nargs = 1;
  in->args = regs(1, v);
  in->nidx = 1;
  in->idx = gc_alloc_atomic(sizeof(IrIndex));
  in->idx[0] = (IrIndex){IX_SINGLE, i, -1};
}

static void move(Code *c, SrcPos pos, int dst, int src) {
  IrInstr *in = emit(c, IR_MOVE, pos);
  in->dst = dst;
  in->nargs = 1;
  in->args = regs(1, src);
}

static int index2(Rw *W, Code *c, SrcPos pos, int base, int i, int j, Type t) {
  IrInstr *in = emit(c, IR_INDEX, pos);
  in->dst = new_reg(W, t);
  in->nargs = 1;
  in->args = regs(1, base);
  in->nidx = 2;
  in->idx = gc_alloc_atomic(2 * sizeof(IrIndex));
  in->idx[0] = (IrIndex){IX_SINGLE, i, -1};
  in->idx[1] = (IrIndex){IX_SINGLE, j, -1};
  return in->dst;
}

static void store2(Code *c, SrcPos pos, int base, int i, int j, int v) {
  IrInstr *in = emit(c, IR_STORE, pos);
  in->dst = base;
  in->nargs = 1;
  in->args = regs(1, v);
  in->nidx = 2;
  in->idx = gc_alloc_atomic(2 * sizeof(IrIndex));
  in->idx[0] = (IrIndex){IX_SINGLE, i, -1};
  in->idx[1] = (IrIndex){IX_SINGLE, j, -1};
}

static int decl(Rw *W, Code *c, SrcPos pos, Type t, int n1, int n2) {
  IrInstr *d = emit(c, IR_DECL, pos);
  d->dst = new_reg(W, t);
  d->nsizes = n2 >= 0 ? 2 : 1;
  d->sizes = n2 >= 0 ? regs(2, n1, n2) : regs(1, n1);
  return d->dst;
}

static void emit_if(Code *c, SrcPos pos, int cond, Code *th, Code *el) {
  IrInstr *in = emit(c, IR_IF, pos);
  in->nargs = 1;
  in->args = regs(1, cond);
  if (th) in->then_b = done(th);
  if (el) in->else_b = done(el);
}

static void emit_for(Code *c, const IrInstr *like, SrcPos pos, int var, int lo, int hi, Code *body);

/* The k-th term of a log-sum-exp: v[k] of a vector, or v[k, col] of a
   matrix's column. */
static int lse_term(Rw *W, Code *c, SrcPos pos, int v, int col, int k) {
  Type tr = ty_make(TY_REAL, 0);
  return col >= 0 ? index2(W, c, pos, v, k, col, tr) : index1(W, c, pos, v, k, tr);
}

/* log_sum_exp of the n >= 1 terms v[1..n] (or the column col of a matrix
   v) as scalar loops, which the JIT compiles natively (a call of the
   log_sum_exp builtin is a call into its runtime per datapoint or per
   step): the largest term, then mx + log(sum exp(v[k] - mx)).  An infinite
   largest term is the result itself, so that every term -inf gives -inf
   with a zero gradient, never NaN; a NaN term gives NaN. */
static int emit_lse(Rw *W, Code *c, SrcPos pos, int v, int col, int n) {
  Type tr = ty_make(TY_REAL, 0), ti = ty_make(TY_INT, 0), tb = ty_make(TY_BOOL, 0);
  int one = k_int(W, c, pos, 1), two = k_int(W, c, pos, 2);
  int mx = new_reg(W, tr), r = new_reg(W, tr);
  move(c, pos, mx, lse_term(W, c, pos, v, col, one));
  int k = new_reg(W, ti);
  Code mb = {0}, up = {0};
  int x = lse_term(W, &mb, pos, v, col, k);
  move(&up, pos, mx, x);
  emit_if(&mb, pos, binop(W, &mb, pos, OP_GT, x, mx, tb), &up, NULL);
  emit_for(c, NULL, pos, k, two, n, &mb);
  int fin = binop(W, c, pos, OP_LT, binop(W, c, pos, OP_SUB, mx, mx, tr), k_real(W, c, pos, 1), tb);
  Code th = {0}, el = {0}, sb = {0};
  int sum = new_reg(W, tr), k2 = new_reg(W, ti);
  move(&th, pos, sum, k_real(W, &th, pos, 0));
  int d = binop(W, &sb, pos, OP_SUB, lse_term(W, &sb, pos, v, col, k2), mx, tr);
  move(&sb, pos, sum, binop(W, &sb, pos, OP_ADD, sum, call_builtin(W, &sb, pos, "exp", tr, -1, 1, &d), tr));
  emit_for(&th, NULL, pos, k2, one, n, &sb);
  move(&th, pos, r, binop(W, &th, pos, OP_ADD, mx, call_builtin(W, &th, pos, "log", tr, -1, 1, &sum), tr));
  move(&el, pos, r, mx); /* +-inf, or NaN (which fails mx - mx < 1 too) */
  emit_if(c, pos, fin, &th, &el);
  return r;
}

static const char *lp_name(const DistFamily *f) {
  return gc_printf("%s_%s", f->name, f->discrete ? "lpmf" : "lpdf");
}

/* lp = lp + x */
static void add_lp(Rw *W, Code *c, SrcPos pos, int lp, int x) {
  int s = binop(W, c, pos, OP_ADD, lp, x, ty_make(TY_REAL, 0));
  move(c, pos, lp, s);
}

static IrBlock copy_block(Rw *W, const IrBlock *b, int from, int mode, int lp);
static void point_choice(Code *c, const Site *s, int v);

/* A copy of the site's segment (its set, when it has one). */
static IrBlock copy_seg(Rw *W, const Site *s, int mode, int lp) {
  const IrBlock *ms = W->mseg;
  const bool *mm = W->mmask;
  W->mseg = s->mask ? s->seg : NULL;
  W->mmask = s->mask;
  IrBlock r = copy_block(W, s->seg, s->from, mode, lp);
  W->mseg = ms, W->mmask = mm;
  return r;
}

/* A bounded site's range's ends as registers. */
static void range_ends(Rw *W, Code *c, const Site *s, int *lo, int *hi) {
  long lk, hk;
  range_of(s->ins, lo, &lk, hi, &hk);
  if (*lo < 0) *lo = k_int(W, c, s->ins->pos, lk);
  if (*hi < 0) *hi = k_int(W, c, s->ins->pos, hk);
}

/* The support's size K and the value of its k-th element, for a site. */
static int support_size(Rw *W, Code *c, const Site *s) {
  SrcPos pos = s->ins->pos;
  const int *pr = s->ins->dist.params;
  Type ti = ty_make(TY_INT, 0);
  switch (s->kind) {
  case SUP_RANGE: { /* hi - lo + 1, none when the range is empty */
    int lo, hi;
    range_ends(W, c, s, &lo, &hi);
    int n = binop(W, c, pos, OP_ADD, binop(W, c, pos, OP_SUB, hi, lo, ti), k_int(W, c, pos, 1), ti);
    int none = binop(W, c, pos, OP_LT, n, k_int(W, c, pos, 0), ty_make(TY_BOOL, 0));
    Code th = {0};
    move(&th, pos, n, k_int(W, &th, pos, 0));
    emit_if(c, pos, none, &th, NULL);
    return n;
  }
  case SUP_BERNOULLI: return k_int(W, c, pos, 2);
  case SUP_CATEGORICAL: return call_builtin(W, c, pos, "num_elements", ti, -1, 1, pr);
  case SUP_UNIFORM: {
    int d = binop(W, c, pos, OP_SUB, pr[1], pr[0], ti);
    return binop(W, c, pos, OP_ADD, d, k_int(W, c, pos, 1), ti);
  }
  default: return binop(W, c, pos, OP_ADD, pr[0], k_int(W, c, pos, 1), ti);
  }
}

static int support_value(Rw *W, Code *c, const Site *s, int k) {
  SrcPos pos = s->ins->pos;
  Type ti = ty_make(TY_INT, 0);
  switch (s->kind) {
  case SUP_CATEGORICAL: return k;
  case SUP_RANGE: {
    int lo, hi;
    range_ends(W, c, s, &lo, &hi);
    return binop(W, c, pos, OP_ADD, lo, binop(W, c, pos, OP_SUB, k, k_int(W, c, pos, 1), ti), ti);
  }
  case SUP_UNIFORM: {
    int d = binop(W, c, pos, OP_SUB, k, k_int(W, c, pos, 1), ti);
    return binop(W, c, pos, OP_ADD, s->ins->dist.params[0], d, ti);
  }
  default: return binop(W, c, pos, OP_SUB, k, k_int(W, c, pos, 1), ti);
  }
}

/* Is r data declared a simplex (or an array of them), which loading the
   data checked? */
static bool data_simplex(const Plan *P, int r) {
  if (P->written[r]) return false;
  const IrInstr *d = find_def(&P->p->data_b, r);
  return d && d->op == IR_DATA && d->con.kind == CON_SIMPLEX && count_writes(&P->p->data_b, 0, r) == 1;
}

/* Is register r a simplex by construction: a simplex latent or data, an
   element of an array of them, or a copy of one (on every path that writes
   it)?  Then categorical's check of its argument cannot fail and is not
   made. */
static bool defs_simplex(const Plan *P, const IrBlock *b, int r, int depth, int *ndefs) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    const IrBlock *subs[4] = {&in->then_b, &in->else_b, &in->cond_b, &in->body};
    for (int k = 0; k < 4; k++)
      if (!defs_simplex(P, subs[k], r, depth, ndefs)) return false;
    if (in->dst != r) continue;
    ++*ndefs;
    const IrBlock *mb = &P->p->model_b;
    if (in->op == IR_SAMPLE && in->con.kind == CON_SIMPLEX && count_writes(mb, 0, r) == 1) continue;
    if (in->op == IR_MOVE && depth < 4) {
      int nd = 0;
      if (defs_simplex(P, mb, in->args[0], depth + 1, &nd) && nd > 0) continue;
      return false;
    }
    if (in->op == IR_INDEX && in->nidx == 1 && in->idx[0].kind == IX_SINGLE) {
      if (data_simplex(P, in->args[0]) && P->p->main.regtypes[in->args[0]].ndims == 1) continue;
      const IrInstr *d = find_def(mb, in->args[0]);
      if (d && d->op == IR_SAMPLE && d->con.kind == CON_SIMPLEX &&
          count_writes(mb, 0, in->args[0]) == 1 && P->p->main.regtypes[in->args[0]].ndims == 1)
        continue;
    }
    return false;
  }
  return true;
}

static bool known_simplex(const Plan *P, int r) {
  if (data_simplex(P, r)) return true;
  int n = 0;
  return defs_simplex(P, &P->p->model_b, r, 0, &n) && n > 0;
}

/* The choice's log probabilities over its whole support (K values) as one
   vector, where the family has a vector form: made once a segment (or once
   for a whole loop, hoisted) instead of one lpmf call a value; log(theta)
   element by element, in loops the JIT compiles natively.  categorical's
   check of its simplex (O(K), a runtime call) is made once, and not at all
   for a simplex by construction.  -1: no vector form. */
static int lp_vector(Rw *W, Code *c, const Site *s, int K) {
  SrcPos pos = s->ins->pos;
  const char *f = s->ins->dist.fam->name;
  const int *pr = s->ins->dist.params;
  if (s->kind == SUP_RANGE) { /* lpmf per value of the range, its sum the truncation's mass */
    int n = s->ins->dist.nparams, k = new_reg(W, ty_make(TY_INT, 0));
    int lv = decl(W, c, pos, ty_make(TY_VECTOR, 0), K, -1);
    Code b = {0};
    int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
    args[0] = support_value(W, &b, s, k);
    memcpy(args + 1, pr, sizeof(int) * (size_t)n);
    int x = call_builtin(W, &b, pos, lp_name(s->ins->dist.fam), ty_make(TY_REAL, 0), -1, n + 1, args);
    store1(&b, pos, lv, k, x);
    emit_for(c, NULL, pos, k, k_int(W, c, pos, 1), K, &b);
    return lv;
  }
  Type tv = W->P->p->main.regtypes[pr[0]], tr = ty_make(TY_REAL, 0);
  bool cat = !strcmp(f, "categorical");
  if (!cat && !(!strcmp(f, "categorical_logit") && tv.base == TY_VECTOR && tv.ndims == 0)) return -1;
  int one = k_int(W, c, pos, 1), norm = -1;
  if (cat && !known_simplex(W->P, pr[0]))
    call_builtin(W, c, pos, "categorical_lpmf", tr, -1, 2, regs(2, one, pr[0]));
  if (!cat) norm = emit_lse(W, c, pos, pr[0], -1, K);
  int lv = decl(W, c, pos, ty_make(TY_VECTOR, 0), K, -1), k = new_reg(W, ty_make(TY_INT, 0));
  Code b = {0};
  int x = index1(W, &b, pos, pr[0], k, tr);
  store1(&b, pos, lv, k, cat ? call_builtin(W, &b, pos, "log", tr, -1, 1, &x)
                             : binop(W, &b, pos, OP_SUB, x, norm, tr));
  emit_for(c, NULL, pos, k, one, K, &b);
  return lv;
}

/* A site in the loop F whose support and log probabilities do not change
   from one iteration to the next (its parameters are not written in F):
   they are made once before F (hoist_before), not per datapoint. */
static void hoist_before(Rw *W, Code *c, const IrInstr *F) {
  const Plan *P = W->P;
  for (int i = 0; i < P->pub->n; i++) {
    const Site *s = &P->sites[i];
    if (!P->pub->lat[i].ok || s->chain || (s->outer != F && s->loop != F)) continue;
    int nr = P->p->main.nregs;
    bool *w = gc_alloc_atomic((size_t)nr);
    memset(w, 0, (size_t)nr);
    mark_writes(&F->body, 0, w);
    w[F->var] = true;
    bool inv = true;
    for (int k = 0; k < s->ins->dist.nparams; k++) inv = inv && !w[s->ins->dist.params[k]];
    if (!inv) continue;
    W->hK[i] = support_size(W, c, s);
    W->hV[i] = lp_vector(W, c, s, W->hK[i]);
  }
}

/* acc[k] = the log density of the segment with z = its k-th value, for each
   k of the support (its size into *K).  Returns acc; *norm: for a bounded
   choice, the log of its family's mass over the range (the truncation's
   normaliser, to subtract from the sum), else -1. */
static int emit_acc(Rw *W, Code *c, const Site *s, int *K, int *norm) {
  SrcPos pos = s->ins->pos;
  Type tr = ty_make(TY_REAL, 0), ti = ty_make(TY_INT, 0);
  int si = (int)(s - W->P->sites);
  bool hoisted = W->hK[si] >= 0;
  *K = hoisted ? W->hK[si] : support_size(W, c, s);
  int acc = decl(W, c, pos, ty_make(TY_VECTOR, 0), *K, -1);
  int one = k_int(W, c, pos, 1);
  int lpv = hoisted ? W->hV[si] : lp_vector(W, c, s, *K);
  *norm = s->kind == SUP_RANGE ? emit_lse(W, c, pos, lpv, -1, *K) : -1;
  int k = new_reg(W, ti);
  Code body = {0};
  int v = support_value(W, &body, s, k);
  if (s->loop) store1(&body, pos, s->ins->dst, s->loop->var, v);
  else move(&body, pos, s->ins->dst, v);
  /* the choice's own log probability, then the segment's */
  int lp = new_reg(W, tr);
  if (lpv >= 0) {
    move(&body, pos, lp, index1(W, &body, pos, lpv, k, tr));
  } else {
    int n = s->ins->dist.nparams;
    int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
    args[0] = v;
    memcpy(args + 1, s->ins->dist.params, sizeof(int) * (size_t)n);
    call_builtin(W, &body, pos, lp_name(s->ins->dist.fam), tr, lp, n + 1, args);
  }
  IrBlock seg = copy_seg(W, s, M_ACC, lp);
  append(&body, seg);
  store1(&body, pos, acc, k, lp);
  IrInstr *f = emit(c, IR_FOR, pos);
  f->var = k;
  f->nargs = 2;
  f->args = regs(2, one, *K);
  f->body = done(&body);
  return acc;
}

/* The enumerated site in the density: acc, then target += log_sum_exp(acc). */
static void emit_density(Rw *W, Code *c, const Site *s) {
  int K, norm;
  int acc = emit_acc(W, c, s, &K, &norm);
  int lse = emit_lse(W, c, s->ins->pos, acc, -1, K);
  if (norm >= 0) lse = binop(W, c, s->ins->pos, OP_SUB, lse, norm, ty_make(TY_REAL, 0));
  IrInstr *f = emit(c, IR_FACTOR, s->ins->pos);
  f->nargs = 1;
  f->args = regs(1, lse);
}

/* The pr_ output of site s (--enum-marginals): P(z = k-th value | draw),
   a vector per scalar, rows by index for one in a loop or an array. */
static int pr_reg(Rw *W, const Site *s, int rows) {
  int i = (int)(s - W->P->sites);
  if (W->pr[i] >= 0) return W->pr[i];
  Type t = ty_make(TY_VECTOR, rows);
  int r = W->pr[i] = new_reg(W, t);
  W->names[r] = gc_printf("pr_%s", s->ins->name);
  W->out[W->nout++] = (IrOutput){W->names[r], r, t, OUT_GENERATED};
  return r;
}

/* pr = rows of K0 reals, one per index 1..n */
static int pr_decl(Rw *W, Code *c, const Site *s, int n, int K0) {
  int r = pr_reg(W, s, 1);
  IrInstr *d = emit(c, IR_DECL, s->ins->pos);
  d->dst = r;
  d->nsizes = 2, d->sizes = regs(2, n, K0);
  return r;
}

static int softmax(Rw *W, Code *c, SrcPos pos, int v) {
  return call_builtin(W, c, pos, "softmax", ty_make(TY_VECTOR, 0), -1, 1, &v);
}

/* An index 1..K drawn with probabilities softmax(v): categorical_rng of
   softmax, not categorical_logit_rng, which refuses a term of -inf (a value
   of probability zero: a structural zero of a transition matrix). */
static int draw_index(Rw *W, Code *c, SrcPos pos, int v) {
  int p = softmax(W, c, pos, v);
  return call_builtin(W, c, pos, "categorical_rng", ty_make(TY_INT, 0), -1, 1, &p);
}

/* z = v as a choice under z's own name and address (a point mass,
   discrete_uniform(v, v), which the draw handler draws), so the run keeps it
   as a latent of its loop, with the columns and the choices-file address mh
   gives it. */
static void point_choice(Code *c, const Site *s, int v) {
  IrInstr *in = emit(c, IR_SAMPLE, s->ins->pos);
  *in = *s->ins;
  in->dist = (IrDist){dist_lookup("discrete_uniform"), 2, regs(2, v, v)};
  in->con = (IrCon){CON_NONE, -1, -1};
}

/* The chain's state before the step the loop variable is at = v. */
static void put_state(Rw *W, Code *c, const Site *s, int v) {
  SrcPos pos = s->ins->pos;
  if (!s->carry_arr) {
    move(c, pos, s->carry, v);
    return;
  }
  Type ti = ty_make(TY_INT, 0);
  store1(c, pos, s->carry, binop(W, c, pos, OP_SUB, s->chain->var, k_int(W, c, pos, 1), ti), v);
}

/* The state before choice j: the value before the loop at the first step,
   else the j-th value of the support. */
static void set_state(Rw *W, Code *c, const Site *s, int started, int c0, int j) {
  SrcPos pos = s->ins->pos;
  int b = binop(W, c, pos, OP_NE, started, k_int(W, c, pos, 0), ty_make(TY_BOOL, 0));
  Code th = {0}, el = {0};
  put_state(W, &th, s, support_value(W, &th, s, j));
  if (!s->carry_arr) move(&el, pos, s->carry, c0);
  IrInstr *in = emit(c, IR_IF, pos);
  in->nargs = 1;
  in->args = regs(1, b);
  in->then_b = done(&th);
  in->else_b = done(&el);
}

/* lp = lp0 + the iteration's log density from its choice on, with z = its
   value v (the part before the choice is already in lp0); lpk: the choice's
   log probability when it is made already, else -1. */
static int step_lp(Rw *W, Code *c, const Site *s, IrBlock post, int v, int lp0, int lpk) {
  SrcPos pos = s->ins->pos;
  Type tr = ty_make(TY_REAL, 0);
  move(c, pos, s->ins->dst, v);
  int lp = new_reg(W, tr);
  if (lpk >= 0) {
    move(c, pos, lp, lpk);
  } else {
    int n = s->ins->dist.nparams;
    int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
    args[0] = v;
    memcpy(args + 1, s->ins->dist.params, sizeof(int) * (size_t)n);
    call_builtin(W, c, pos, lp_name(s->ins->dist.fam), tr, lp, n + 1, args);
  }
  add_lp(W, c, pos, lp, lp0);
  append(c, copy_block(W, &post, 0, M_ACC, lp));
  return lp;
}

/* Taint: does in read a register of t?  Then what it writes depends on
   them; else its dst is overwritten with a value that does not. */
static bool taint_step(const Plan *P, const IrInstr *in, bool *t) {
  int nr = P->p->main.nregs;
  bool r = false;
  for (int k = 0; k < nr && !r; k++) r = t[k] && reads_reg(in, k);
  if (r) {
    IrBlock one = {1, (IrInstr *)in};
    mark_writes(&one, 0, t);
  } else if (in->dst >= 0 && in->op != IR_STORE) {
    t[in->dst] = false;
  }
  return r;
}

/* Does the chain's iteration after its choice read nothing that depends on
   the previous state (the carried value, or what the part before the choice
   made from it)?  Then its log density is a function of the choice alone,
   made once per value of a step (K), not once per pair of values (K x K):
   an HMM's emissions. */
static bool post_free(const Plan *P, const Site *s) {
  const IrBlock *b = &s->chain->body;
  int nr = P->p->main.nregs;
  bool *t = gc_alloc_atomic((size_t)nr);
  memset(t, 0, (size_t)nr);
  t[s->carry] = true;
  for (int i = 0; i < s->at; i++) taint_step(P, &b->ins[i], t);
  if (s->carry_arr) t[s->carry] = false; /* after the choice, z[t] is the choice itself */
  for (int i = s->at + 1; i < b->n; i++)
    if (taint_step(P, &b->ins[i], t)) return false;
  return true;
}

static void emit_for(Code *c, const IrInstr *like, SrcPos pos, int var, int lo, int hi, Code *body) {
  IrInstr *f = emit(c, IR_FOR, pos);
  if (like) *f = *like;
  f->var = var;
  f->nargs = 2;
  f->args = regs(2, lo, hi);
  f->body = done(body);
}

/* trans_fixed's taint of the part before the choice, b[0..n): which
   registers depend on the step's variable other than through t == lo and
   the carried array's z[t - 1]; an if whose condition does not descends
   into its branches (a register is tainted after it when it is in either). */
static void trans_taint(const Plan *P, const Site *s, const IrBlock *b, int n, long l0, bool *t) {
  const IrInstr *F = s->chain;
  const IrBlock *mb = &P->p->model_b;
  int nr = P->p->main.nregs;
  for (int i = 0; i < n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_IF && in->nargs == 1 && !t[in->args[0]] && in->cond_b.n == 0) {
      bool *t2 = gc_alloc_atomic((size_t)nr);
      memcpy(t2, t, (size_t)nr);
      trans_taint(P, s, &in->then_b, in->then_b.n, l0, t);
      trans_taint(P, s, &in->else_b, in->else_b.n, l0, t2);
      for (int k = 0; k < nr; k++) t[k] = t[k] || t2[k];
      continue;
    }
    if (in->op == IR_BINARY && (in->sub == OP_EQ || in->sub == OP_NE) && in->dst >= 0) {
      int o = in->args[0] == F->var ? in->args[1] : in->args[1] == F->var ? in->args[0] : -1;
      const IrInstr *c = o >= 0 ? find_def(mb, o) : NULL;
      if (c && c->op == IR_CONST && c->imm.k == V_INT && c->imm.i == l0 &&
          count_writes(mb, 0, o) == 1) {
        t[in->dst] = false; /* the same at every step after the first */
        continue;
      }
    }
    /* the state z[t - 1] of a chain carried in an array: what put_state
       sets at every step, not a function of t */
    if (s->carry_arr && in->op == IR_INDEX && in->dst >= 0 && in->nargs == 1 &&
        in->args[0] == s->carry && in->nidx == 1 && in->idx[0].kind == IX_SINGLE) {
      const IrInstr *ix = find_def(mb, in->idx[0].lo);
      const IrInstr *one = ix && ix->op == IR_BINARY && ix->sub == OP_SUB && ix->args[0] == F->var
                               ? find_def(mb, ix->args[1])
                               : NULL;
      if (one && one->op == IR_CONST && one->imm.k == V_INT && one->imm.i == 1 &&
          count_writes(mb, 0, ix->dst) == 1 && count_writes(mb, 0, one->dst) == 1) {
        t[in->dst] = false;
        continue;
      }
    }
    taint_step(P, in, t);
  }
}

/* Is the chain's transition the same at every step after the first: its
   distribution's parameters depend on the step's variable t only through
   t == lo or t != lo (lo the loop's first value, a constant), as in `t == 1 ?
   init : Gamma[z_prev]`, and its log probabilities have a vector form?  Then
   they are made once per previous state before the loop (hoist_trans), not
   once per step. */
static bool trans_fixed(const Plan *P, const Site *s) {
  const IrInstr *F = s->chain;
  const IrBlock *b = &F->body, *mb = &P->p->model_b;
  const char *f = s->ins->dist.fam->name;
  if (s->kind != SUP_CATEGORICAL ||
      !(!strcmp(f, "categorical") ||
        (!strcmp(f, "categorical_logit") && P->p->main.regtypes[s->ins->dist.params[0]].base == TY_VECTOR &&
         P->p->main.regtypes[s->ins->dist.params[0]].ndims == 0)))
    return false;
  const IrInstr *l0 = find_def(mb, F->args[0]);
  if (!l0 || l0->op != IR_CONST || l0->imm.k != V_INT || count_writes(mb, 0, F->args[0]) != 1) return false;
  int nr = P->p->main.nregs;
  bool *t = gc_alloc_atomic((size_t)nr);
  memset(t, 0, (size_t)nr);
  t[F->var] = true;
  trans_taint(P, s, b, s->at, l0->imm.i, t);
  for (int k = 0; k < s->ins->dist.nparams; k++)
    if (t[s->ins->dist.params[k]]) return false;
  return true;
}

/* The transitions' log probabilities at a step after the first, one vector
   per previous state j (LG[j]), made once before the loop: the part before
   the choice run at t = lo + 1 for each j.  Only when the loop has a second
   step (else nothing reads them). */
static int hoist_trans(Rw *W, Code *c, const Site *s) {
  const IrInstr *F = s->chain;
  SrcPos pos = s->ins->pos;
  IrBlock pre = {s->at, F->body.ins};
  Type ti = ty_make(TY_INT, 0);
  int lo = F->args[0], hi = F->args[1], one = k_int(W, c, pos, 1);
  Code h = {0}, jb = {0};
  move(&h, pos, F->var, binop(W, &h, pos, OP_ADD, lo, one, ti));
  put_state(W, &h, s, support_value(W, &h, s, one));
  append(&h, copy_block(W, &pre, 0, M_DRAW, -1));
  int K = support_size(W, &h, s);
  IrInstr *d = emit(&h, IR_DECL, pos);
  int LG = d->dst = new_reg(W, ty_make(TY_VECTOR, 1));
  d->nsizes = 2, d->sizes = regs(2, K, K);
  int j = new_reg(W, ti);
  put_state(W, &jb, s, support_value(W, &jb, s, j));
  append(&jb, copy_block(W, &pre, 0, M_DRAW, -1));
  store1(&jb, pos, LG, j, lp_vector(W, &jb, s, K));
  emit_for(&h, NULL, pos, j, one, K, &jb);
  emit_if(c, pos, binop(W, c, pos, OP_GT, hi, lo, ty_make(TY_BOOL, 0)), &h, NULL);
  return LG;
}

/* Can the chain's density be one hmm_log_marginal call (emit_chain_fused)?
   Its transition is the same at every step after the first (trans_fixed),
   what follows the choice does not read the previous state (post_free: the
   emissions are a K x T matrix), and nothing before the choice scores (its
   scores would depend on the previous state, outside the three inputs). */
static bool chain_fusable(const Plan *P, const Site *s) {
  for (int i = 0; i < s->at; i++)
    if (has_score(&s->chain->body.ins[i])) return false;
  return trans_fixed(P, s) && post_free(P, s);
}

/* The chain's density by one call of the fused forward algorithm
   (stdlib/builtins_hmm.c): log_rho from the first step's distribution (the
   state before the loop), log_Gamma[j, k] from a later step's with the state
   the j-th value, and per step t the column log_omega[, t] of the part after
   the choice once per value; then hmm_log_marginal(log_omega, log_Gamma,
   log_rho).  A gradient then records one node for the recursion instead of
   K x K a step, and compiled code calls the same kernel. */
static void emit_chain_fused(Rw *W, Code *c, const Site *s, int lp) {
  const IrInstr *F = s->chain;
  SrcPos pos = s->ins->pos;
  IrBlock pre = {s->at, F->body.ins}, post = {F->body.n - s->at - 1, F->body.ins + s->at + 1};
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0), tm = ty_make(TY_MATRIX, 0);
  int lo = F->args[0], hi = F->args[1];
  Code h = {0}; /* only when the loop runs: else the chain adds log 1 */
  int one = k_int(W, &h, pos, 1);
  int niter = binop(W, &h, pos, OP_ADD, binop(W, &h, pos, OP_SUB, hi, lo, ti), one, ti);
  int c0 = new_reg(W, ti), started = new_reg(W, ti);
  if (!s->carry_arr) move(&h, pos, c0, s->carry);
  move(&h, pos, started, k_int(W, &h, pos, 0));
  /* log_rho: the first step's distribution, the state as before the loop */
  move(&h, pos, F->var, lo);
  append(&h, copy_block(W, &pre, 0, M_DRAW, -1));
  int K = support_size(W, &h, s);
  int rho = lp_vector(W, &h, s, K);
  /* log_Gamma: a later step's, per previous state j (when there is one) */
  int G = decl(W, &h, pos, tm, K, K);
  {
    Code g = {0}, jb = {0}, kb = {0};
    int j = new_reg(W, ti), k = new_reg(W, ti);
    move(&jb, pos, F->var, binop(W, &jb, pos, OP_ADD, lo, one, ti));
    put_state(W, &jb, s, support_value(W, &jb, s, j));
    append(&jb, copy_block(W, &pre, 0, M_DRAW, -1));
    int lv = lp_vector(W, &jb, s, K);
    store2(&kb, pos, G, j, k, index1(W, &kb, pos, lv, k, tr));
    emit_for(&jb, NULL, pos, k, one, K, &kb);
    emit_for(&g, NULL, pos, j, one, K, &jb);
    emit_if(&h, pos, binop(W, &h, pos, OP_GT, hi, lo, ty_make(TY_BOOL, 0)), &g, NULL);
  }
  /* log_omega: per step, the part after the choice once per value */
  int O = decl(W, &h, pos, tm, K, niter);
  Code body = {0}, eb = {0};
  set_state(W, &body, s, started, c0, one);
  append(&body, copy_block(W, &pre, 0, M_DRAW, -1));
  int col = binop(W, &body, pos, OP_ADD, binop(W, &body, pos, OP_SUB, F->var, lo, ti), one, ti);
  int ke = new_reg(W, ti), e = new_reg(W, tr);
  move(&eb, pos, s->ins->dst, support_value(W, &eb, s, ke));
  move(&eb, pos, e, k_real(W, &eb, pos, 0));
  append(&eb, copy_block(W, &post, 0, M_ACC, e));
  store2(&eb, pos, O, ke, col, e);
  emit_for(&body, NULL, pos, ke, one, K, &eb);
  move(&body, pos, started, one);
  emit_for(&h, F, pos, F->var, lo, hi, &body);
  int r = call_builtin(W, &h, pos, "hmm_log_marginal", tr, -1, 3, regs(3, O, G, rho));
  if (lp >= 0) {
    add_lp(W, &h, pos, lp, r);
  } else {
    IrInstr *f = emit(&h, IR_FACTOR, pos);
    f->nargs = 1;
    f->args = regs(1, r);
  }
  emit_if(c, pos, binop(W, c, pos, OP_GE, hi, lo, ty_make(TY_BOOL, 0)), &h, NULL);
}

/* A chain by the forward algorithm: alpha[k] = log p(the data so far, this
   step's choice = the k-th value), one K x K log-sum-exp per step; the
   density adds log_sum_exp(alpha) after the loop.  The draws pass keeps
   every step's alpha, draws the choices backwards (forward filtering,
   backward sampling) and replays the loop with them. */
static void emit_chain(Rw *W, Code *c, const Site *s, bool draw, int lp) {
  if (!draw && chain_fusable(W->P, s)) {
    emit_chain_fused(W, c, s, lp);
    return;
  }
  const IrInstr *F = s->chain;
  SrcPos pos = s->ins->pos;
  IrBlock pre = {s->at, F->body.ins}, post = {F->body.n - s->at - 1, F->body.ins + s->at + 1};
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0), tv = ty_make(TY_VECTOR, 0);
  int lo = F->args[0], hi = F->args[1];
  int one = k_int(W, c, pos, 1);
  int m = new_reg(W, ti), started = new_reg(W, ti), c0 = new_reg(W, ti);
  move(c, pos, m, one);
  move(c, pos, started, k_int(W, c, pos, 0));
  if (!s->carry_arr) move(c, pos, c0, s->carry);
  /* alpha changes size after the first step: a copy, not a declared size */
  IrInstr *d = emit(c, IR_DECL, pos); /* declared, not copied: inside another's sum this
                                          runs again after alpha had K entries */
  int alpha = d->dst = new_reg(W, tv);
  d->nsizes = 1, d->sizes = regs(1, one);
  store1(c, pos, alpha, one, k_real(W, c, pos, 0));
  int niter = -1, K0 = -1, AL = -1;
  Code dc = {0}; /* the draws pass: only for a loop that runs */
  if (draw) {
    niter = binop(W, c, pos, OP_ADD, binop(W, c, pos, OP_SUB, hi, lo, ti), one, ti);
    move(&dc, pos, F->var, lo); /* the first step's support size */
    if (!s->carry_arr) move(&dc, pos, s->carry, c0);
    append(&dc, copy_block(W, &pre, 0, M_DRAW, -1));
    K0 = support_size(W, &dc, s);
    d = emit(&dc, IR_DECL, pos);
    AL = d->dst = new_reg(W, ty_make(TY_VECTOR, 1));
    d->nsizes = 2, d->sizes = regs(2, niter, K0);
  }
  int LG = trans_fixed(W->P, s) ? hoist_trans(W, draw ? &dc : c, s) : -1;
  /* forward: per previous state j, the part before the choice (which makes
     the transition's distribution) and its log probabilities as a vector;
     MX[j, k] = alpha[j] + the step's log density from j to k; then
     alpha[k] = log_sum_exp over j of MX[j, k], in native loops */
  Code body = {0};
  set_state(W, &body, s, started, c0, one);
  append(&body, copy_block(W, &pre, 0, M_DRAW, -1));
  int K = support_size(W, &body, s);
  bool free_post = post_free(W->P, s);
  int E = -1;
  if (free_post) { /* E[k]: the part after the choice, once per value */
    E = decl(W, &body, pos, tv, K, -1);
    int ke = new_reg(W, ti), e = new_reg(W, tr);
    Code eb = {0};
    move(&eb, pos, s->ins->dst, support_value(W, &eb, s, ke));
    move(&eb, pos, e, k_real(W, &eb, pos, 0));
    append(&eb, copy_block(W, &post, 0, M_ACC, e));
    store1(&eb, pos, E, ke, e);
    emit_for(&body, NULL, pos, ke, one, K, &eb);
  }
  int MX = decl(W, &body, pos, ty_make(TY_MATRIX, 0), m, K);
  int j = new_reg(W, ti), k = new_reg(W, ti);
  /* the loop over j, twice when the transitions are hoisted: the first step
     makes its log probabilities, the later ones read LG[j, k] */
  Code ver[2] = {{0}, {0}};
  for (int later = 0; later < (LG >= 0 ? 2 : 1); later++) {
    Code jb = {0}, kb = {0};
    set_state(W, &jb, s, started, c0, j);
    int lp0 = new_reg(W, tr);
    move(&jb, pos, lp0, index1(W, &jb, pos, alpha, j, tr));
    append(&jb, copy_block(W, &pre, 0, M_ACC, lp0));
    int lpv = later ? -1 : lp_vector(W, &jb, s, K);
    int lpk = later ? index2(W, &kb, pos, LG, j, k, tr) : lpv >= 0 ? index1(W, &kb, pos, lpv, k, tr) : -1, x;
    if (free_post) {
      if (lpk < 0) {
        int n = s->ins->dist.nparams;
        int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
        args[0] = support_value(W, &kb, s, k);
        memcpy(args + 1, s->ins->dist.params, sizeof(int) * (size_t)n);
        lpk = call_builtin(W, &kb, pos, lp_name(s->ins->dist.fam), tr, -1, n + 1, args);
      }
      x = binop(W, &kb, pos, OP_ADD, binop(W, &kb, pos, OP_ADD, lp0, lpk, tr),
                index1(W, &kb, pos, E, k, tr), tr);
    } else {
      x = step_lp(W, &kb, s, post, support_value(W, &kb, s, k), lp0, lpk);
    }
    store2(&kb, pos, MX, j, k, x);
    emit_for(&jb, NULL, pos, k, one, K, &kb);
    emit_for(&ver[later], NULL, pos, j, one, m, &jb);
  }
  if (LG >= 0)
    emit_if(&body, pos, binop(W, &body, pos, OP_NE, started, k_int(W, &body, pos, 0), ty_make(TY_BOOL, 0)),
            &ver[1], &ver[0]);
  else
    append(&body, done(&ver[0]));
  /* alpha is declared anew (the compiled code keeps a vector's size across
     copies, and alpha grows from 1 to K after the first step) */
  IrInstr *da = emit(&body, IR_DECL, pos);
  da->dst = alpha, da->nsizes = 1, da->sizes = regs(1, K);
  int kl = new_reg(W, ti);
  Code lb = {0};
  store1(&lb, pos, alpha, kl, emit_lse(W, &lb, pos, MX, kl, m));
  emit_for(&body, NULL, pos, kl, one, K, &lb);
  move(&body, pos, m, K);
  move(&body, pos, started, one);
  if (!draw) {
    emit_for(c, F, pos, F->var, lo, hi, &body);
    int lse = emit_lse(W, c, pos, alpha, -1, m);
    if (lp >= 0) { /* inside another's sum */
      add_lp(W, c, pos, lp, lse);
      return;
    }
    IrInstr *f = emit(c, IR_FACTOR, pos);
    f->nargs = 1;
    f->args = regs(1, lse);
    return;
  }
  int ib = binop(W, &body, pos, OP_ADD, binop(W, &body, pos, OP_SUB, F->var, lo, ti), one, ti);
  store1(&body, pos, AL, ib, alpha);
  emit_for(&dc, F, pos, F->var, lo, hi, &body);
  /* backward: the last choice from alpha, each earlier one given the next */
  d = emit(&dc, IR_DECL, pos);
  int KS = d->dst = new_reg(W, ty_make(TY_INT, 1));
  d->nsizes = 1, d->sizes = regs(1, niter);
  int aT = index1(W, &dc, pos, AL, niter, tv);
  store1(&dc, pos, KS, niter, draw_index(W, &dc, pos, aT));
  int r = new_reg(W, ti);
  Code rb = {0}, wb = {0};
  int pr = -1, beta = -1;
  if (W->marg) { /* smoothing: P(z_t | all the data) from alpha_t + beta_t */
    pr = pr_decl(W, &dc, s, hi, K0);
    int zero = k_real(W, &dc, pos, 0);
    int za[2] = {zero, K0};
    beta = new_reg(W, tv);
    call_builtin(W, &dc, pos, "rep_vector", tv, beta, 2, za);
    store1(&dc, pos, pr, hi, softmax(W, &dc, pos, aT));
  }
  int i = binop(W, &rb, pos, OP_SUB, niter, r, ti);
  move(&rb, pos, F->var, binop(W, &rb, pos, OP_ADD, lo, i, ti)); /* the step after i */
  int knext = index1(W, &rb, pos, KS, binop(W, &rb, pos, OP_ADD, i, one, ti), ti);
  int ai = index1(W, &rb, pos, AL, i, tv);
  d = emit(&rb, IR_DECL, pos);
  int w = d->dst = new_reg(W, tv);
  d->nsizes = 1, d->sizes = regs(1, K0);
  int jj = new_reg(W, ti);
  put_state(W, &wb, s, support_value(W, &wb, s, jj));
  int lq = new_reg(W, tr);
  move(&wb, pos, lq, index1(W, &wb, pos, ai, jj, tr));
  append(&wb, copy_block(W, &pre, 0, M_ACC, lq));
  store1(&wb, pos, w, jj, step_lp(W, &wb, s, post, support_value(W, &wb, s, knext), lq, -1));
  emit_for(&rb, NULL, pos, jj, one, K0, &wb);
  store1(&rb, pos, KS, i, draw_index(W, &rb, pos, w));
  if (W->marg) { /* beta_i[j] = log_sum_exp_k(M_{i+1}[j, k] + beta_{i+1}[k]) */
    d = emit(&rb, IR_DECL, pos);
    int nb = d->dst = new_reg(W, tv);
    d->nsizes = 1, d->sizes = regs(1, K0);
    int j2 = new_reg(W, ti), k2 = new_reg(W, ti);
    Code jb2 = {0}, kb2 = {0};
    put_state(W, &jb2, s, support_value(W, &jb2, s, j2));
    int l0 = new_reg(W, tr);
    move(&jb2, pos, l0, k_real(W, &jb2, pos, 0));
    append(&jb2, copy_block(W, &pre, 0, M_ACC, l0));
    d = emit(&jb2, IR_DECL, pos);
    int a2 = d->dst = new_reg(W, tv);
    d->nsizes = 1, d->sizes = regs(1, K0);
    int lk = step_lp(W, &kb2, s, post, support_value(W, &kb2, s, k2), l0, -1);
    int bk = index1(W, &kb2, pos, beta, k2, tr);
    store1(&kb2, pos, a2, k2, binop(W, &kb2, pos, OP_ADD, lk, bk, tr));
    emit_for(&jb2, NULL, pos, k2, one, K0, &kb2);
    store1(&jb2, pos, nb, j2, call_builtin(W, &jb2, pos, "log_sum_exp", tr, -1, 1, &a2));
    emit_for(&rb, NULL, pos, j2, one, K0, &jb2);
    move(&rb, pos, beta, nb);
    int t = binop(W, &rb, pos, OP_SUB, binop(W, &rb, pos, OP_ADD, lo, i, ti), one, ti);
    int ab = binop(W, &rb, pos, OP_ADD, index1(W, &rb, pos, AL, i, tv), beta, tv);
    store1(&rb, pos, pr, t, softmax(W, &rb, pos, ab));
  }
  emit_for(&dc, NULL, pos, r, one, binop(W, &dc, pos, OP_SUB, niter, one, ti), &rb);
  /* replay the loop with the drawn choices */
  if (!s->carry_arr) move(&dc, pos, s->carry, c0);
  Code pb = {0};
  append(&pb, copy_block(W, &pre, 0, M_DRAW, -1));
  int ip = binop(W, &pb, pos, OP_ADD, binop(W, &pb, pos, OP_SUB, F->var, lo, ti), one, ti);
  point_choice(&pb, s, support_value(W, &pb, s, index1(W, &pb, pos, KS, ip, ti)));
  append(&pb, copy_block(W, &post, 0, M_DRAW, -1));
  emit_for(&dc, F, pos, F->var, lo, hi, &pb);
  int runs = binop(W, c, pos, OP_GE, niter, one, ty_make(TY_BOOL, 0));
  IrInstr *in = emit(c, IR_IF, pos);
  in->nargs = 1;
  in->args = regs(1, runs);
  in->then_b = done(&dc);
}

/* A factorial chain (plan_factorial): s's choice z1 and its partner's z2 in
 * one loop, summed by the forward algorithm over the product state
 * k = (k1 - 1) K2 + k2.  Per step and previous state j = (j1, j2): both
 * carried copies set from j, the part before z1 once (into lp0), then per
 * k: z1 = its k1-th value with its log probability, and the rest of the
 * iteration with z2 = its k2-th value (W->fix) and its log probability:
 * MX[j, k]; alpha[k] = log_sum_exp_j MX[j, k].  K2 is made per step from the
 * part between the choices run with z1's first value (z2's support may
 * depend on what it computes).  The draws pass keeps alpha and K2 per step
 * and draws backwards (forward filtering, backward sampling over the
 * product state), then replays the loop with both choices as point
 * choices under their own names.  No fused kernel, no hoisted transitions,
 * no pr_ columns (not yet). */
/* Can a factorial chain's step be made from per-state parts: the part
   between the choices scores nothing and z2's distribution does not depend
   on z1 there (so both choices' log probabilities are vectors made once per
   previous state), the rest after z2 reads nothing that depends on the
   previous states (so it is made once per product state, K, not K x K: the
   emissions), and both families give their log probabilities as a vector?
   Then MX[j, k] = alpha[j] + pre(j) + l1(j)[k1] + l2(j)[k2] + E[k]. */
static bool fc_separable(const Plan *P, const Site *s, const Site *s2) {
  const IrBlock *b = &s->chain->body;
  int nr = P->p->main.nregs;
  bool *t = gc_alloc_atomic((size_t)nr), *u = gc_alloc_atomic((size_t)nr);
  memset(t, 0, (size_t)nr);
  memset(u, 0, (size_t)nr);
  t[s->carry] = t[s2->carry] = true;
  u[s->ins->dst] = true;
  for (int i = 0; i < s->at; i++) taint_step(P, &b->ins[i], t);
  for (int i = s->at + 1; i < s2->at; i++) {
    if (has_score(&b->ins[i])) return false;
    taint_step(P, &b->ins[i], t);
    taint_step(P, &b->ins[i], u);
  }
  for (int k = 0; k < s2->ins->dist.nparams; k++)
    if (u[s2->ins->dist.params[k]]) return false;
  for (int i = s2->at + 1; i < b->n; i++)
    if (taint_step(P, &b->ins[i], t)) return false;
  for (int q = 0; q < 2; q++) { /* lp_vector's families */
    const Site *e = q ? s2 : s;
    const char *f = e->ins->dist.fam->name;
    Type tv = P->p->main.regtypes[e->ins->dist.params[0]];
    if (strcmp(f, "categorical") &&
        !(!strcmp(f, "categorical_logit") && tv.base == TY_VECTOR && tv.ndims == 0))
      return false;
  }
  return true;
}

/* What emit_fchain's steps share. */
typedef struct Fc {
  Rw *W;
  const Site *s, *s2;
  const IrInstr *F;
  SrcPos pos;
  IrBlock pre, mid;
  int one, pK2, started, c01, c02;
} Fc;

/* The states before a step from the product index j (1-based, over the
   previous step's K2), or the values before the loop at the first step. */
static void fc_set_state(Fc *f, Code *c, int j) {
  Rw *W = f->W;
  Type ti = ty_make(TY_INT, 0);
  Code th = {0}, el = {0};
  int j0 = binop(W, &th, f->pos, OP_SUB, j, f->one, ti);
  int j1 = binop(W, &th, f->pos, OP_ADD, binop(W, &th, f->pos, OP_IDIV, j0, f->pK2, ti), f->one, ti);
  int j2 = binop(W, &th, f->pos, OP_ADD, binop(W, &th, f->pos, OP_MOD, j0, f->pK2, ti), f->one, ti);
  move(&th, f->pos, f->s->carry, support_value(W, &th, f->s, j1));
  move(&th, f->pos, f->s2->carry, support_value(W, &th, f->s2, j2));
  move(&el, f->pos, f->s->carry, f->c01);
  move(&el, f->pos, f->s2->carry, f->c02);
  emit_if(c, f->pos, binop(W, c, f->pos, OP_NE, f->started, k_int(W, c, f->pos, 0), ty_make(TY_BOOL, 0)),
          &th, &el);
}

/* a0 + one step's log density from the previous state j to the product
   state k (z1's value k / K2, z2's k % K2, 0-based), in a new register. */
static int fc_step(Fc *f, Code *c, int j, int k, int a0, int K2) {
  Rw *W = f->W;
  const Site *s = f->s;
  SrcPos pos = f->pos;
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0);
  fc_set_state(f, c, j);
  int lp0 = new_reg(W, tr);
  move(c, pos, lp0, a0);
  append(c, copy_block(W, &f->pre, 0, M_ACC, lp0));
  int k0 = binop(W, c, pos, OP_SUB, k, f->one, ti);
  int k1 = binop(W, c, pos, OP_ADD, binop(W, c, pos, OP_IDIV, k0, K2, ti), f->one, ti);
  int k2 = binop(W, c, pos, OP_ADD, binop(W, c, pos, OP_MOD, k0, K2, ti), f->one, ti);
  int v1 = support_value(W, c, s, k1);
  int n = s->ins->dist.nparams;
  int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  args[0] = v1;
  memcpy(args + 1, s->ins->dist.params, sizeof(int) * (size_t)n);
  move(c, pos, s->ins->dst, v1);
  int out = new_reg(W, tr);
  move(c, pos, out, lp0);
  add_lp(W, c, pos, out, call_builtin(W, c, pos, lp_name(s->ins->dist.fam), tr, -1, n + 1, args));
  W->fix = f->s2, W->fixv = support_value(W, c, f->s2, k2), W->fixpoint = false;
  append(c, copy_block(W, &f->mid, 0, M_ACC, out));
  IrBlock tail = {f->F->body.n - f->s2->at, f->F->body.ins + f->s2->at};
  append(c, copy_block(W, &tail, 0, M_ACC, out));
  W->fix = NULL;
  return out;
}

static void emit_fchain(Rw *W, Code *c, const Site *s, bool draw, int lp) {
  const Site *s2 = &W->P->sites[s->partner1 - 1];
  const IrInstr *F = s->chain;
  SrcPos pos = s->ins->pos;
  IrBlock pre = {s->at, F->body.ins};
  IrBlock mid = {s2->at - s->at - 1, F->body.ins + s->at + 1};
  IrBlock post = {F->body.n - s->at - 1, F->body.ins + s->at + 1};
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0), tv = ty_make(TY_VECTOR, 0);
  Type tb = ty_make(TY_BOOL, 0);
  int lo = F->args[0], hi = F->args[1];
  int one = k_int(W, c, pos, 1);
  int m = new_reg(W, ti), started = new_reg(W, ti), pK2 = new_reg(W, ti);
  int c01 = new_reg(W, ti), c02 = new_reg(W, ti);
  move(c, pos, m, one);
  move(c, pos, pK2, one);
  move(c, pos, started, k_int(W, c, pos, 0));
  move(c, pos, c01, s->carry);
  move(c, pos, c02, s2->carry);
  Fc fc = {W, s, s2, F, pos, pre, mid, one, pK2, started, c01, c02};
  IrInstr *d = emit(c, IR_DECL, pos);
  int alpha = d->dst = new_reg(W, tv);
  d->nsizes = 1, d->sizes = regs(1, one);
  store1(c, pos, alpha, one, k_real(W, c, pos, 0));
  /* the step's sizes: the part before z1, z1's first value, the part
     between the choices (no scoring) */
  Code body = {0};
  fc_set_state(&fc, &body, one);
  append(&body, copy_block(W, &pre, 0, M_DRAW, -1));
  int K1 = support_size(W, &body, s);
  move(&body, pos, s->ins->dst, support_value(W, &body, s, one));
  append(&body, copy_block(W, &mid, 0, M_DRAW, -1));
  int K2 = support_size(W, &body, s2);
  int K = binop(W, &body, pos, OP_MUL, K1, K2, ti);
  int MX = decl(W, &body, pos, ty_make(TY_MATRIX, 0), m, K);
  int j = new_reg(W, ti), k = new_reg(W, ti);
  Code jb = {0}, kb = {0};
  int x;
  if (fc_separable(W->P, s, s2)) {
    /* E[k]: the rest of the iteration after z2, once per product state */
    IrBlock rest = {F->body.n - s2->at - 1, F->body.ins + s2->at + 1};
    int E = decl(W, &body, pos, tv, K, -1);
    int ke = new_reg(W, ti), e = new_reg(W, tr);
    Code eb = {0};
    int k0 = binop(W, &eb, pos, OP_SUB, ke, one, ti);
    move(&eb, pos, s->ins->dst,
         support_value(W, &eb, s, binop(W, &eb, pos, OP_ADD, binop(W, &eb, pos, OP_IDIV, k0, K2, ti), one, ti)));
    append(&eb, copy_block(W, &mid, 0, M_DRAW, -1));
    move(&eb, pos, s2->ins->dst,
         support_value(W, &eb, s2, binop(W, &eb, pos, OP_ADD, binop(W, &eb, pos, OP_MOD, k0, K2, ti), one, ti)));
    move(&eb, pos, e, k_real(W, &eb, pos, 0));
    append(&eb, copy_block(W, &rest, 0, M_ACC, e));
    store1(&eb, pos, E, ke, e);
    emit_for(&body, NULL, pos, ke, one, K, &eb);
    /* per previous state: both choices' log probabilities as vectors */
    fc_set_state(&fc, &jb, j);
    int lp0 = new_reg(W, tr);
    move(&jb, pos, lp0, index1(W, &jb, pos, alpha, j, tr));
    append(&jb, copy_block(W, &pre, 0, M_ACC, lp0));
    int l1 = lp_vector(W, &jb, s, K1);
    move(&jb, pos, s->ins->dst, support_value(W, &jb, s, one));
    append(&jb, copy_block(W, &mid, 0, M_DRAW, -1));
    int l2 = lp_vector(W, &jb, s2, K2);
    int k0b = binop(W, &kb, pos, OP_SUB, k, one, ti);
    int k1 = binop(W, &kb, pos, OP_ADD, binop(W, &kb, pos, OP_IDIV, k0b, K2, ti), one, ti);
    int k2 = binop(W, &kb, pos, OP_ADD, binop(W, &kb, pos, OP_MOD, k0b, K2, ti), one, ti);
    x = binop(W, &kb, pos, OP_ADD, lp0, index1(W, &kb, pos, l1, k1, tr), tr);
    x = binop(W, &kb, pos, OP_ADD, x, index1(W, &kb, pos, l2, k2, tr), tr);
    x = binop(W, &kb, pos, OP_ADD, x, index1(W, &kb, pos, E, k, tr), tr);
  } else {
    int aj = index1(W, &jb, pos, alpha, j, tr);
    x = fc_step(&fc, &kb, j, k, aj, K2);
  }
  store2(&kb, pos, MX, j, k, x);
  emit_for(&jb, NULL, pos, k, one, K, &kb);
  emit_for(&body, NULL, pos, j, one, m, &jb);
  IrInstr *da = emit(&body, IR_DECL, pos);
  da->dst = alpha, da->nsizes = 1, da->sizes = regs(1, K);
  int kl = new_reg(W, ti);
  Code lb = {0};
  store1(&lb, pos, alpha, kl, emit_lse(W, &lb, pos, MX, kl, m));
  emit_for(&body, NULL, pos, kl, one, K, &lb);
  int K2s = new_reg(W, ti);
  move(&body, pos, K2s, K2);
  move(&body, pos, m, K);
  move(&body, pos, pK2, K2);
  move(&body, pos, started, one);
  if (!draw) {
    emit_for(c, F, pos, F->var, lo, hi, &body);
    int lse = emit_lse(W, c, pos, alpha, -1, m);
    if (lp >= 0) {
      add_lp(W, c, pos, lp, lse);
    } else {
      IrInstr *f = emit(c, IR_FACTOR, pos);
      f->nargs = 1;
      f->args = regs(1, lse);
    }
    return;
  }
  /* the draws pass: alpha and K2 per step, then backwards; alpha's size
     from the first step's (the sizes are the same at every step, as
     emit_chain's) */
  Code dc = {0};
  int niter = binop(W, c, pos, OP_ADD, binop(W, c, pos, OP_SUB, hi, lo, ti), one, ti);
  move(&dc, pos, F->var, lo);
  move(&dc, pos, s->carry, c01);
  move(&dc, pos, s2->carry, c02);
  append(&dc, copy_block(W, &pre, 0, M_DRAW, -1));
  int K10 = support_size(W, &dc, s);
  move(&dc, pos, s->ins->dst, support_value(W, &dc, s, one));
  append(&dc, copy_block(W, &mid, 0, M_DRAW, -1));
  int K0 = binop(W, &dc, pos, OP_MUL, K10, support_size(W, &dc, s2), ti);
  d = emit(&dc, IR_DECL, pos);
  int AL = d->dst = new_reg(W, ty_make(TY_VECTOR, 1));
  d->nsizes = 2, d->sizes = regs(2, niter, K0);
  d = emit(&dc, IR_DECL, pos);
  int KK2 = d->dst = new_reg(W, ty_make(TY_INT, 1));
  d->nsizes = 1, d->sizes = regs(1, niter);
  int ib = binop(W, &body, pos, OP_ADD, binop(W, &body, pos, OP_SUB, F->var, lo, ti), one, ti);
  store1(&body, pos, AL, ib, alpha);
  store1(&body, pos, KK2, ib, K2s);
  emit_for(&dc, F, pos, F->var, lo, hi, &body);
  d = emit(&dc, IR_DECL, pos);
  int KS = d->dst = new_reg(W, ty_make(TY_INT, 1));
  d->nsizes = 1, d->sizes = regs(1, niter);
  store1(&dc, pos, KS, niter, draw_index(W, &dc, pos, index1(W, &dc, pos, AL, niter, tv)));
  /* step i + 1 from each state jj of step i to the drawn knext */
  int r = new_reg(W, ti), jj = new_reg(W, ti);
  Code rb = {0}, wb = {0};
  int i = binop(W, &rb, pos, OP_SUB, niter, r, ti);
  int i1 = binop(W, &rb, pos, OP_ADD, i, one, ti);
  move(&rb, pos, F->var, binop(W, &rb, pos, OP_ADD, lo, i, ti)); /* the step after i */
  int knext = index1(W, &rb, pos, KS, i1, ti);
  int ai = index1(W, &rb, pos, AL, i, tv);
  move(&rb, pos, pK2, index1(W, &rb, pos, KK2, i, ti));
  int K2n = index1(W, &rb, pos, KK2, i1, ti);
  int Ki = call_builtin(W, &rb, pos, "num_elements", ti, -1, 1, &ai);
  move(&rb, pos, started, one);
  int w = decl(W, &rb, pos, tv, Ki, -1);
  int y;
  y = fc_step(&fc, &wb, jj, knext, index1(W, &wb, pos, ai, jj, tr), K2n);
  store1(&wb, pos, w, jj, y);
  emit_for(&rb, NULL, pos, jj, one, Ki, &wb);
  store1(&rb, pos, KS, i, draw_index(W, &rb, pos, w));
  emit_for(&dc, NULL, pos, r, one, binop(W, &dc, pos, OP_SUB, niter, one, ti), &rb);
  /* replay the loop with the drawn states as point choices */
  move(&dc, pos, s->carry, c01);
  move(&dc, pos, s2->carry, c02);
  Code pb = {0};
  append(&pb, copy_block(W, &pre, 0, M_DRAW, -1));
  int ip = binop(W, &pb, pos, OP_ADD, binop(W, &pb, pos, OP_SUB, F->var, lo, ti), one, ti);
  int kd = binop(W, &pb, pos, OP_SUB, index1(W, &pb, pos, KS, ip, ti), one, ti);
  int K2d = index1(W, &pb, pos, KK2, ip, ti);
  int kd1 = binop(W, &pb, pos, OP_ADD, binop(W, &pb, pos, OP_IDIV, kd, K2d, ti), one, ti);
  int kd2 = binop(W, &pb, pos, OP_ADD, binop(W, &pb, pos, OP_MOD, kd, K2d, ti), one, ti);
  point_choice(&pb, s, support_value(W, &pb, s, kd1));
  W->fix = s2, W->fixv = support_value(W, &pb, s2, kd2), W->fixpoint = true;
  append(&pb, copy_block(W, &post, 0, M_DRAW, -1));
  W->fix = NULL, W->fixpoint = false;
  emit_for(&dc, F, pos, F->var, lo, hi, &pb);
  int runs = binop(W, c, pos, OP_GE, niter, one, tb);
  IrInstr *in = emit(c, IR_IF, pos);
  in->nargs = 1;
  in->args = regs(1, runs);
  in->then_b = done(&dc);
}

static const Site *site_chain(const Plan *P, const IrInstr *F) {
  for (int i = 0; i < P->pub->n; i++)
    if (P->sites[i].chain == F) return &P->sites[i];
  return NULL;
}

/* The loops around x in b, outermost first (at most 8), and whether an if is
   on the way; -1 when b does not hold x. */
static int enclosing(const IrBlock *b, const IrInstr *x, const IrInstr **loops, int n, bool *branch) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in == x) return n;
    if (!holds(in, x)) continue;
    if (in->op == IR_FOR && n < 8) loops[n++] = in;
    else if (in->op == IR_FOR) return -1;
    if (in->op == IR_IF) *branch = true;
    if (in->op == IR_WHILE) return -1;
    const IrBlock *subs[3] = {&in->then_b, &in->else_b, &in->body};
    for (int k = 0; k < 3; k++) {
      int r = enclosing(subs[k], x, loops, n, branch);
      if (r >= 0) return r;
    }
    return -1;
  }
  return -1;
}

/* A latent under an if or in a loop in a loop (Site.nested) has pr_ rows
   indexed by its loops' variables when the loops' bounds and its support's
   size are known once the data is loaded (they size the output before the
   outermost loop); rows where its branch does not run stay 0. */
static int nested_loops(const Rw *W, const Site *s, const IrInstr **loops) {
  const Plan *P = W->P;
  bool br = false;
  int n = enclosing(&P->p->model_b, s->ins, loops, 0, &br);
  for (int l = 0; l < n; l++)
    for (int k = 0; k < 2; k++) { /* data, or a constant wherever it is made */
      int r = loops[l]->args[k];
      const IrInstr *d = find_def(&P->p->model_b, r);
      if (!data_reg(P, r) && !(d && d->op == IR_CONST && count_writes(&P->p->model_b, 0, r) == 1))
        return -1;
    }
  if (s->kind == SUP_CATEGORICAL && !data_reg(P, s->ins->dist.params[0])) return -1;
  return n;
}

/* Before the model block's statement `in`: the pr_ outputs of the nested
   latents it holds, declared (loops' upper bounds x the support's size). */
static void nested_pr_decl(Rw *W, Code *c, const IrInstr *in) {
  const Plan *P = W->P;
  for (int i = 0; i < P->pub->n; i++) {
    const Site *s = &P->sites[i];
    const IrInstr *loops[8];
    int n;
    if (!s->nested || !P->pub->lat[i].ok || s->group1 || !holds(in, s->ins) ||
        (n = nested_loops(W, s, loops)) < 0)
      continue;
    int r = pr_reg(W, s, n);
    int *sz = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
    for (int l = 0; l < n; l++) sz[l] = loops[l]->args[1];
    sz[n] = support_size(W, c, s);
    IrInstr *d = emit(c, IR_DECL, s->ins->pos);
    d->dst = r;
    d->nsizes = n + 1, d->sizes = sz;
  }
}

/* The enumerated site in the draws pass: z from softmax(acc), then its
   segment once with that value. */
static void emit_draw(Rw *W, Code *c, const Site *s) {
  SrcPos pos = s->ins->pos;
  int K, norm;
  int acc = emit_acc(W, c, s, &K, &norm);
  if (W->marg && !s->nested) {
    if (s->loop) store1(c, pos, pr_reg(W, s, 1), s->loop->var, softmax(W, c, pos, acc));
    else if (s->top) move(c, pos, pr_reg(W, s, 0), softmax(W, c, pos, acc));
    else store1(c, pos, pr_reg(W, s, 1), s->outer->var, softmax(W, c, pos, acc));
  } else if (W->marg && W->pr[s - W->P->sites] >= 0) { /* nested: declared by nested_pr_decl */
    const IrInstr *loops[8];
    int n = nested_loops(W, s, loops);
    int sm = softmax(W, c, pos, acc);
    if (n == 0) {
      move(c, pos, W->pr[s - W->P->sites], sm);
    } else {
      IrInstr *st = emit(c, IR_STORE, pos);
      st->dst = W->pr[s - W->P->sites];
      st->nargs = 1;
      st->args = regs(1, sm);
      st->nidx = n;
      st->idx = gc_alloc_atomic(sizeof(IrIndex) * (size_t)n);
      for (int l = 0; l < n; l++) st->idx[l] = (IrIndex){IX_SINGLE, loops[l]->var, -1};
    }
  }
  int k = draw_index(W, c, pos, acc);
  int v = support_value(W, c, s, k);
  if (s->loop) store1(c, pos, s->ins->dst, s->loop->var, v);
  else if (s->top) move(c, pos, s->ins->dst, v);
  else point_choice(c, s, v);
  W->entered = s; /* the segment's own start is no site again */
  IrBlock seg = copy_seg(W, s, M_DRAW, -1);
  append(c, seg);
}

static const Site *site_of(const Plan *P, const IrInstr *in) {
  for (int i = 0; i < P->pub->n; i++)
    if (P->sites[i].ins == in) return &P->sites[i];
  return NULL;
}

static const Site *site_at(const Plan *P, const IrBlock *b, int i) {
  for (int k = 0; k < P->pub->n; k++)
    if (P->sites[k].loop && P->sites[k].seg == b && P->sites[k].from == i) return &P->sites[k];
  return NULL;
}

/* ---- variable elimination: the code ----------------------------------------- */

/* A factor: a table of log densities over the members of sc, flattened with
   the last member varying fastest (stride[j] per member j of sc). */
/* the tables alive at once: a prior per member, a table per scope of the
   segment's scores (plan_groups caps them), one more per elimination */
#define TAB_MAX (2 * GROUP_MAX + 8)

typedef struct Tab {
  unsigned sc;
  int reg;
  int stride[GROUP_MAX];
} Tab;

static Tab new_tab(Rw *W, Code *c, SrcPos pos, unsigned sc, const int *K, int m) {
  Tab t = {.sc = sc};
  Type ti = ty_make(TY_INT, 0);
  int n = k_int(W, c, pos, 1);
  for (int j = m - 1; j >= 0; j--)
    if (sc >> j & 1) t.stride[j] = n, n = binop(W, c, pos, OP_MUL, n, K[j], ti);
  t.reg = decl(W, c, pos, ty_make(TY_VECTOR, 0), n, -1);
  return t;
}

/* t's flat index at the members' indices cur[j] (1-based), and its entry */
static int tab_idx(Rw *W, Code *c, SrcPos pos, const Tab *t, const int *cur, int m) {
  Type ti = ty_make(TY_INT, 0);
  int idx = k_int(W, c, pos, 1), one = -1;
  for (int j = 0; j < m; j++) {
    if (!(t->sc >> j & 1)) continue;
    if (one < 0) one = k_int(W, c, pos, 1);
    int d = binop(W, c, pos, OP_SUB, cur[j], one, ti);
    idx = binop(W, c, pos, OP_ADD, idx, binop(W, c, pos, OP_MUL, d, t->stride[j], ti), ti);
  }
  return idx;
}

static int tab_at(Rw *W, Code *c, SrcPos pos, const Tab *t, const int *cur, int m) {
  return index1(W, c, pos, t->reg, tab_idx(W, c, pos, t, cur, m), ty_make(TY_REAL, 0));
}

/* Loops over every assignment of the members of sc (program order), each
   loop variable into cur[j]; setz: each member's register set to its value
   as its loop starts.  loops_open returns the innermost body. */
typedef struct Loops {
  int n, j[GROUP_MAX];
  Code body[GROUP_MAX];
} Loops;

static Code *loops_open(Rw *W, Loops *L, Code *c, const Group *g, unsigned sc, int *cur, bool setz) {
  memset(L, 0, sizeof *L);
  Type ti = ty_make(TY_INT, 0);
  for (int j = 0; j < g->m; j++) {
    if (!(sc >> j & 1)) continue;
    const Site *s = &W->P->sites[g->mem[j]];
    Code *b = &L->body[L->n];
    cur[j] = new_reg(W, ti);
    if (setz) move(b, s->ins->pos, s->ins->dst, support_value(W, b, s, cur[j]));
    L->j[L->n++] = j;
  }
  return L->n ? &L->body[L->n - 1] : c;
}

static void loops_close(Rw *W, Loops *L, Code *c, const int *cur, const int *K, SrcPos pos) {
  for (int l = L->n - 1; l >= 0; l--) {
    Code *outer = l ? &L->body[l - 1] : c;
    emit_for(outer, NULL, pos, cur[L->j[l]], k_int(W, outer, pos, 1), K[L->j[l]], &L->body[l]);
  }
}

/* Copies of the segment's instructions lo..hi-1 chosen by sel: 1 as the
   draws pass copies them (their computations, no scores), 2 with their
   scores added into lp. */
static void copy_sel(Rw *W, Code *c, const Group *g, int lo, int hi, const char *sel, int lp) {
  const IrBlock *b = g->b, *ms = W->mseg;
  const bool *mm = W->mmask;
  bool h = W->hoisting;
  for (int i = lo; i < hi;) {
    if (!sel[i]) {
      i++;
      continue;
    }
    int mode = sel[i], j = i;
    bool *mk = gc_alloc_atomic((size_t)b->n + 1);
    memset(mk, 0, (size_t)b->n + 1);
    for (; j < hi && (!sel[j] || sel[j] == mode); j++) mk[j] = sel[j] != 0;
    W->mseg = b, W->mmask = mk, W->hoisting = true; /* the members' hoisted ones are in it */
    append(c, copy_block(W, b, i, mode == 2 ? M_ACC : M_DRAW, lp));
    W->mseg = ms, W->mmask = mm, W->hoisting = h;
    i = j;
  }
}

static int member_at(const Group *g, int i) {
  for (int j = 0; j < g->m; j++)
    if (g->at[j] == i) return j;
  return -1;
}

/* sel for the instructions of lo..hi-1 whose scope lies in sc: those of
   exactly scope acc_sc (when >= 0) with their scores, the others for their
   values alone */
static char *select_in(const Group *g, unsigned sc, long acc_sc) {
  char *sel = gc_alloc_atomic((size_t)g->b->n + 1);
  memset(sel, 0, (size_t)g->b->n + 1);
  for (int i = g->from; i < g->b->n; i++)
    if (g->mask[i] && member_at(g, i) < 0 && !(g->isc[i] & ~sc))
      sel[i] = acc_sc >= 0 && g->iscore[i] && g->isc[i] == (unsigned)acc_sc ? 2 : 1;
  return sel;
}

/* Sum out the members in ord[0..n) from the factors fs (*nf of them, updated
   in place); rec[s], when given, receives the factors step s combined. */
static void eliminate(Rw *W, Code *c, const Group *g, SrcPos pos, const int *K, Tab *fs, int *nf,
                      const int *ord, int n, Tab (*rec)[TAB_MAX], int *nrec) {
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0);
  for (int s = 0; s < n; s++) {
    int v = ord[s], nc = 0;
    unsigned U = 0;
    Tab cons[TAB_MAX];
    for (int f = 0; f < *nf;) {
      if (fs[f].sc >> v & 1) {
        U |= fs[f].sc;
        cons[nc++] = fs[f];
        fs[f] = fs[--*nf];
      } else {
        f++;
      }
    }
    U &= ~(1u << v);
    Tab nt = new_tab(W, c, pos, U, K, g->m);
    int cur[GROUP_MAX];
    Loops L;
    int tv = decl(W, c, pos, ty_make(TY_VECTOR, 0), K[v], -1); /* filled anew per assignment */
    Code *in = loops_open(W, &L, c, g, U, cur, false);
    Code kb = {0};
    cur[v] = new_reg(W, ti);
    int sum = tab_at(W, &kb, pos, &cons[0], cur, g->m);
    for (int f = 1; f < nc; f++) sum = binop(W, &kb, pos, OP_ADD, sum, tab_at(W, &kb, pos, &cons[f], cur, g->m), tr);
    store1(&kb, pos, tv, cur[v], sum);
    emit_for(in, NULL, pos, cur[v], k_int(W, in, pos, 1), K[v], &kb);
    int lse = emit_lse(W, in, pos, tv, -1, K[v]);
    store1(in, pos, nt.reg, tab_idx(W, in, pos, &nt, cur, g->m), lse);
    loops_close(W, &L, c, cur, K, pos);
    if (rec) {
      memcpy(rec[s], cons, sizeof(Tab) * (size_t)nc);
      nrec[s] = nc;
    }
    fs[(*nf)++] = nt;
  }
}

/* The group rooted at site s in the density (target += the sum over every
   member's values) or the draws pass (each member drawn from its exact
   conditional, the last summed first, then the segment run once with
   them). */
static void emit_group(Rw *W, Code *c, const Site *R, int mode) {
  const Plan *P = W->P;
  const Group *g = &P->groups[R->group1 - 1];
  SrcPos pos = R->ins->pos;
  Type ti = ty_make(TY_INT, 0), tr = ty_make(TY_REAL, 0);
  int m = g->m, K[GROUP_MAX];
  /* the supports' sizes, fixed (plan_groups) */
  for (int j = 0; j < m; j++) {
    const Site *s = &P->sites[g->mem[j]];
    int si = g->mem[j];
    const IrInstr *d = NULL;
    if (s->kind == SUP_CATEGORICAL)
      for (int i = g->from; i < g->b->n && !d; i++)
        if (g->mask[i] && g->b->ins[i].dst == s->ins->dist.params[0]) d = &g->b->ins[i];
    if (W->hK[si] >= 0) {
      K[j] = W->hK[si];
    } else if (d) { /* an element of an array: its first element's size */
      int e = index1(W, c, pos, d->args[0], k_int(W, c, pos, 1), P->p->main.regtypes[d->dst]);
      K[j] = call_builtin(W, c, pos, "num_elements", ti, -1, 1, &e);
    } else {
      K[j] = support_size(W, c, s);
    }
  }
  Tab fs[TAB_MAX];
  int nf = 0, cur[GROUP_MAX];
  Loops L;
  /* each member's own log probabilities: a table over it and what its
     parameters depend on, its vector of log probabilities made once per
     assignment of those */
  for (int j = 0; j < m; j++) {
    const Site *s = &P->sites[g->mem[j]];
    int si = g->mem[j];
    unsigned S = g->isc[g->at[j]], Pj = S & ~(1u << j);
    Tab t = new_tab(W, c, pos, S, K, m);
    Code *in = loops_open(W, &L, c, g, Pj, cur, true);
    copy_sel(W, in, g, g->from, g->at[j], select_in(g, Pj, -1), -1);
    int lpv = W->hK[si] >= 0 ? W->hV[si] : lp_vector(W, in, s, K[j]);
    int norm = s->kind == SUP_RANGE ? emit_lse(W, in, pos, lpv, -1, K[j]) : -1;
    Code kb = {0};
    cur[j] = new_reg(W, ti);
    int x;
    if (lpv >= 0) {
      x = index1(W, &kb, pos, lpv, cur[j], tr);
    } else {
      int n = s->ins->dist.nparams;
      int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
      args[0] = support_value(W, &kb, s, cur[j]);
      memcpy(args + 1, s->ins->dist.params, sizeof(int) * (size_t)n);
      x = call_builtin(W, &kb, pos, lp_name(s->ins->dist.fam), tr, -1, n + 1, args);
    }
    if (norm >= 0) x = binop(W, &kb, pos, OP_SUB, x, norm, tr);
    store1(&kb, pos, t.reg, tab_idx(W, &kb, pos, &t, cur, m), x);
    emit_for(in, NULL, pos, cur[j], k_int(W, in, pos, 1), K[j], &kb);
    loops_close(W, &L, c, cur, K, pos);
    fs[nf++] = t;
  }
  /* the segment's scores: one table per scope, each entry the scores of
     that scope with the members at those values (the values they need,
     of smaller scopes, computed again there) */
  unsigned done_sc[TAB_MAX];
  int nd = 0;
  for (int i = g->from; i < g->b->n; i++) {
    if (!g->mask[i] || !g->iscore[i]) continue;
    unsigned S = g->isc[i];
    bool seen = false;
    for (int k = 0; k < nd; k++) seen |= done_sc[k] == S;
    if (seen) continue;
    done_sc[nd++] = S;
    Tab t = new_tab(W, c, pos, S, K, m);
    Code *in = loops_open(W, &L, c, g, S, cur, true);
    int lp = new_reg(W, tr);
    move(in, pos, lp, k_real(W, in, pos, 0));
    copy_sel(W, in, g, g->from, g->b->n, select_in(g, S, S), lp);
    store1(in, pos, t.reg, tab_idx(W, in, pos, &t, cur, m), lp);
    loops_close(W, &L, c, cur, K, pos);
    fs[nf++] = t;
  }
  Tab init[TAB_MAX];
  int ninit = nf;
  memcpy(init, fs, sizeof(Tab) * (size_t)nf);
  Tab rec[GROUP_MAX][TAB_MAX];
  int nrec[GROUP_MAX];
  eliminate(W, c, g, pos, K, fs, &nf, g->order, m, mode == M_DRAW ? rec : NULL, nrec);
  /* every factor left is over no member: their sum */
  int tot = tab_at(W, c, pos, &fs[0], cur, m);
  for (int f = 1; f < nf; f++) tot = binop(W, c, pos, OP_ADD, tot, tab_at(W, c, pos, &fs[f], cur, m), tr);
  if (mode == M_DENSITY) {
    IrInstr *f = emit(c, IR_FACTOR, pos);
    f->nargs = 1;
    f->args = regs(1, tot);
    return;
  }
  /* draws: backwards through the elimination, each from its factors at the
     values drawn for the later ones */
  int dk[GROUP_MAX];
  for (int s = m - 1; s >= 0; s--) {
    int v = g->order[s];
    int tv = decl(W, c, pos, ty_make(TY_VECTOR, 0), K[v], -1);
    Code kb = {0};
    int at[GROUP_MAX];
    memcpy(at, dk, sizeof at);
    at[v] = new_reg(W, ti);
    int sum = tab_at(W, &kb, pos, &rec[s][0], at, m);
    for (int f = 1; f < nrec[s]; f++)
      sum = binop(W, &kb, pos, OP_ADD, sum, tab_at(W, &kb, pos, &rec[s][f], at, m), tr);
    store1(&kb, pos, tv, at[v], sum);
    emit_for(c, NULL, pos, at[v], k_int(W, c, pos, 1), K[v], &kb);
    dk[v] = draw_index(W, c, pos, tv);
  }
  if (W->marg && !R->nested) /* each member's marginal: the others summed out first */
    for (int v = 0; v < m; v++) {
      const Site *s = &P->sites[g->mem[v]];
      Tab f2[TAB_MAX];
      int n2 = ninit, ord[GROUP_MAX], no = 0;
      memcpy(f2, init, sizeof(Tab) * (size_t)ninit);
      for (int k = 0; k < m; k++)
        if (g->order[k] != v) ord[no++] = g->order[k];
      eliminate(W, c, g, pos, K, f2, &n2, ord, no, NULL, NULL);
      int tv = decl(W, c, pos, ty_make(TY_VECTOR, 0), K[v], -1);
      Code kb = {0};
      int at[GROUP_MAX];
      at[v] = new_reg(W, ti);
      int sum = tab_at(W, &kb, pos, &f2[0], at, m);
      for (int f = 1; f < n2; f++) sum = binop(W, &kb, pos, OP_ADD, sum, tab_at(W, &kb, pos, &f2[f], at, m), tr);
      store1(&kb, pos, tv, at[v], sum);
      emit_for(c, NULL, pos, at[v], k_int(W, c, pos, 1), K[v], &kb);
      if (s->top) move(c, pos, pr_reg(W, s, 0), softmax(W, c, pos, tv));
      else store1(c, pos, pr_reg(W, s, 1), s->outer->var, softmax(W, c, pos, tv));
    }
  /* the segment once with the drawn values, each member a choice where it
     stands */
  char *all = select_in(g, ~0u, -1);
  int prev = g->from;
  for (int j = 0; j < m; j++) {
    const Site *s = &P->sites[g->mem[j]];
    if (g->at[j] >= g->from) copy_sel(W, c, g, prev, g->at[j], all, -1);
    int v = support_value(W, c, s, dk[j]);
    if (s->top) move(c, pos, s->ins->dst, v);
    else point_choice(c, s, v);
    if (g->at[j] >= g->from) prev = g->at[j] + 1;
  }
  copy_sel(W, c, g, prev, g->b->n, all, -1);
}

/* A copy of b[from..]: M_DENSITY the marginalised model, M_ACC a segment
   adding its scores into lp, M_DRAW the draws pass. */
static IrBlock copy_block(Rw *W, const IrBlock *b, int from, int mode, int lp) {
  Code c = {0};
  const Plan *P = W->P;
  Type tr = ty_make(TY_REAL, 0);
  const bool *mask = b == W->mseg ? W->mmask : NULL;
  /* set segments copied already: their members are done */
  const Site **summed = gc_alloc(sizeof *summed * (size_t)(P->pub->n + 1));
  int nsummed = 0;
  for (int i = from; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (!W->hoisting && hoisted(P, in)) continue; /* made before its segment's choice */
    if (mask && !mask[i]) continue;               /* runs after the segment */
    bool in_summed = false;
    for (int k = 0; k < nsummed; k++) in_summed |= summed[k]->mask[i];
    if (in_summed) continue;
    const Site *s = NULL;
    if (W->fix && in == W->fix->ins) { /* emit_fchain's second choice, its value given */
      if (mode == M_DRAW && W->fixpoint) {
        point_choice(&c, W->fix, W->fixv);
      } else {
        move(&c, in->pos, in->dst, W->fixv);
        if (mode == M_ACC) {
          int n = in->dist.nparams;
          int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
          args[0] = W->fixv;
          memcpy(args + 1, in->dist.params, sizeof(int) * (size_t)n);
          add_lp(W, &c, in->pos, lp,
                 call_builtin(W, &c, in->pos, lp_name(in->dist.fam), tr, -1, n + 1, args));
        }
      }
      continue;
    }
    if (W->sizing && in->op == IR_SAMPLE && (s = site_of(P, in)) != NULL && !s->loop) {
      move(&c, in->pos, in->dst, support_value(W, &c, s, k_int(W, &c, in->pos, 1)));
      continue;
    }
    s = mode != M_ACC ? site_at(P, b, i) : NULL;
    if (s && s == W->entered) s = NULL, W->entered = NULL;
    if (s) { /* the element form's loop body from its first read of z[n] */
      if (mode == M_DENSITY) emit_density(W, &c, s);
      else emit_draw(W, &c, s);
      break;
    }
    if (in->op == IR_FOR && (s = site_chain(P, in)) != NULL) {
      if (s->partner1) emit_fchain(W, &c, s, mode == M_DRAW, mode == M_ACC ? lp : -1);
      else emit_chain(W, &c, s, mode == M_DRAW, mode == M_ACC ? lp : -1);
      continue;
    }
    if (in->op == IR_SAMPLE && (s = site_of(P, in)) != NULL && (mode != M_ACC || s->mask)) {
      if (s->loop) { /* drawn element by element in its loop */
        IrInstr *d = emit(&c, IR_DECL, in->pos);
        d->dst = in->dst;
        d->nsizes = in->nsizes;
        d->sizes = in->sizes;
        if (W->marg && mode == M_DRAW) pr_decl(W, &c, s, in->sizes[0], support_size(W, &c, s));
        continue;
      }
      int si = (int)(s - P->sites);
      W->hoisting = true;
      for (int k = s->from; k < s->seg->n; k++)
        if (hoisted_for(P, &s->seg->ins[k], si))
          append(&c, copy_block(W, &(IrBlock){1, &s->seg->ins[k]}, 0, mode, lp));
      W->hoisting = false;
      if (s->group1 && mode != M_ACC) { /* variable elimination over its group */
        emit_group(W, &c, s, mode);
      } else if (mode == M_ACC) { /* summed out inside the enclosing segment: lp += its sum */
        int K, norm;
        int acc = emit_acc(W, &c, s, &K, &norm);
        int lse = emit_lse(W, &c, in->pos, acc, -1, K);
        if (norm >= 0) lse = binop(W, &c, in->pos, OP_SUB, lse, norm, tr);
        add_lp(W, &c, in->pos, lp, lse);
      } else if (mode == M_DENSITY) {
        emit_density(W, &c, s);
      } else {
        emit_draw(W, &c, s);
      }
      if (s->mask) {
        summed[nsummed++] = s;
        continue;
      }
      break; /* the rest of the block was its segment */
    }
    if (mode == M_DRAW && (in->op == IR_SAMPLE || in->op == IR_OBSERVE || in->op == IR_FACTOR ||
                           in->op == IR_CONDITION))
      continue;
    if (mode == M_ACC && in->op == IR_OBSERVE) {
      int n = in->dist.nparams;
      int *args = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
      args[0] = in->args[0];
      memcpy(args + 1, in->dist.params, sizeof(int) * (size_t)n);
      add_lp(W, &c, in->pos, lp, call_builtin(W, &c, in->pos, lp_name(in->dist.fam), tr, -1, n + 1, args));
      continue;
    }
    if (mode == M_ACC && in->op == IR_FACTOR) {
      add_lp(W, &c, in->pos, lp, in->args[0]);
      continue;
    }
    if (mode == M_ACC && in->op == IR_CONDITION) {
      IrInstr *f = emit(&c, IR_IF, in->pos);
      f->nargs = 1;
      f->args = regs(1, in->args[0]);
      Code e = {0};
      add_lp(W, &e, in->pos, lp, k_real(W, &e, in->pos, -INFINITY));
      f = &c.ins[c.n - 1];
      f->else_b = done(&e);
      continue;
    }
    if (W->marg && mode == M_DRAW && b == &P->p->model_b) nested_pr_decl(W, &c, in);
    if (W->marg && mode == M_DRAW && in->op == IR_FOR) {
      for (int k = 0; k < P->pub->n; k++) {
        const Site *ls = &P->sites[k];
        if (ls->outer != in || !P->pub->lat[k].ok || ls->chain || ls->nested) continue;
        /* the support's size from the first iteration's part before the choice */
        move(&c, in->pos, in->var, in->args[0]);
        IrBlock pre = {ls->from - 1, in->body.ins};
        W->sizing = true;
        append(&c, copy_block(W, &pre, 0, M_DRAW, -1));
        W->sizing = false;
        pr_decl(W, &c, ls, in->args[1], support_size(W, &c, ls));
      }
    }
    if (in->op == IR_FOR && mode != M_ACC) hoist_before(W, &c, in);
    IrInstr *o = emit(&c, in->op, in->pos);
    *o = *in;
    if (in->then_b.n) o->then_b = copy_block(W, &in->then_b, 0, mode, lp);
    if (in->else_b.n) o->else_b = copy_block(W, &in->else_b, 0, mode, lp);
    if (in->body.n) o->body = copy_block(W, &in->body, 0, mode, lp);
    if (in->cond_b.n) o->cond_b = copy_block(W, &in->cond_b, 0, mode, lp);
    for (int k = 0; in->op == IR_FOR && k < P->pub->n; k++) /* the hoisted values end with it */
      if (P->sites[k].outer == in || P->sites[k].loop == in) W->hK[k] = W->hV[k] = -1;
  }
  return done(&c);
}

static IrProgram *rewrite(const Plan *P, bool marg) {
  const IrProgram *p = P->p;
  IrProgram *q = gc_alloc(sizeof *q);
  *q = *p;
  Rw W = {.P = P, .q = q, .nregs = p->main.nregs, .capregs = p->main.nregs + 64, .marg = marg};
  W.pr = gc_alloc_atomic(sizeof(int) * (size_t)(P->pub->n + 1));
  W.hK = gc_alloc_atomic(sizeof(int) * (size_t)(P->pub->n + 1));
  W.hV = gc_alloc_atomic(sizeof(int) * (size_t)(P->pub->n + 1));
  for (int i = 0; i < P->pub->n; i++) W.pr[i] = W.hK[i] = W.hV[i] = -1;
  W.out = gc_alloc(sizeof(IrOutput) * (size_t)(p->noutputs + P->pub->n + 1));
  if (p->noutputs) memcpy(W.out, p->outputs, sizeof(IrOutput) * (size_t)p->noutputs);
  W.nout = p->noutputs;
  W.types = gc_alloc_atomic(sizeof(Type) * (size_t)W.capregs);
  W.names = gc_alloc(sizeof(char *) * (size_t)W.capregs);
  memcpy(W.types, p->main.regtypes, sizeof(Type) * (size_t)p->main.nregs);
  if (p->main.regnames) memcpy(W.names, p->main.regnames, sizeof(char *) * (size_t)p->main.nregs);
  q->model_b = copy_block(&W, &p->model_b, 0, M_DENSITY, -1);
  IrBlock draws = copy_block(&W, &p->model_b, 0, M_DRAW, -1);
  IrInstr *g = gc_alloc(sizeof(IrInstr) * (size_t)(draws.n + p->gen_b.n + 1));
  if (draws.n) memcpy(g, draws.ins, sizeof(IrInstr) * (size_t)draws.n);
  if (p->gen_b.n) memcpy(g + draws.n, p->gen_b.ins, sizeof(IrInstr) * (size_t)p->gen_b.n);
  q->gen_b = (IrBlock){draws.n + p->gen_b.n, g};
  q->noutputs = W.nout;
  q->outputs = W.out;
  q->main.nregs = W.nregs;
  q->main.regtypes = W.types;
  q->main.regnames = W.names;
  return q;
}

/* ---- text -------------------------------------------------------------------- */

const char *enum_names(const EnumPlan *pl) {
  const char *s = "";
  for (int i = 0; pl && i < pl->n; i++) {
    bool seen = false;
    for (int k = 0; k < i; k++) seen |= !strcmp(pl->lat[k].name, pl->lat[i].name);
    if (pl->lat[i].ok && !seen) s = gc_printf("%s%s%s", s, *s ? ", " : "", pl->lat[i].name);
  }
  return s;
}

/* A latent's joint factor: "2 x 3", the other latents' sizes first, in
   program order. */
static const char *joint_text(const EnumPlan *pl, const EnumLatent *L) {
  const char *s = "";
  for (int k = 0; k < L->nsc; k++) s = gc_printf("%s%ld x ", s, pl->lat[L->sc[k]].size);
  if (L->chain && L->size > 0) { /* a chain's step: K x K */
    long k = lround(sqrt((double)L->size));
    return gc_printf("%s%ld x %ld", s, k, k);
  }
  return gc_printf("%s%ld", s, L->size);
}

const char *enum_largest_text(const EnumPlan *pl) {
  const EnumLatent *big = NULL;
  for (int i = 0; pl && i < pl->n; i++)
    if (pl->lat[i].ok && (!big || pl->lat[i].joint > big->joint)) big = &pl->lat[i];
  if (!big || big->size < 0) return "unknown";
  if (big->nsc > 0) return joint_text(pl, big);
  if (!big->chain) return gc_printf("%ld", big->size);
  long k = lround(sqrt((double)big->size));
  if (big->partner1 && pl->lat[big->partner1 - 1].size >= 0) /* the product state's step */
    k *= lround(sqrt((double)pl->lat[big->partner1 - 1].size));
  return gc_printf("%ld x %ld", k, k);
}

char *enum_print(const EnumPlan *pl) {
  char *s = gc_printf("enumerated:\n");
  for (int i = 0; i < pl->n; i++) {
    const EnumLatent *L = &pl->lat[i];
    long k = L->chain && L->size > 0 ? lround(sqrt((double)L->size)) : 0;
    if (L->ok && L->joint > ENUM_FACTOR_LIMIT)
      s = gc_printf("%s  %s  not enumerated: its factor has %ld terms, above the limit of %d\n",
                    s, L->name, L->joint, ENUM_FACTOR_LIMIT);
    else if (L->ok && L->partner && L->joint >= 0) {
      long k2 = lround(sqrt((double)pl->lat[L->partner1 - 1].size));
      s = gc_printf("%s  %s  enumerated, factor %ld x %ld = %ld (a factorial chain with '%s': "
                    "forward algorithm over its %ld x %ld product states)\n",
                    s, L->name, k * k2, k * k2, L->joint, L->partner,
                    L->partner1 > i + 1 ? k : k2, L->partner1 > i + 1 ? k2 : k);
    }
    else if (L->ok && L->partner)
      s = gc_printf("%s  %s  enumerated, factor %s (a factorial chain with '%s': forward "
                    "algorithm over the product state)\n", s, L->name, L->cost, L->partner);
    else if (L->ok && L->nsc > 0 && L->joint >= 0)
      s = gc_printf("%s  %s  enumerated, factor %s = %ld (summed out inside the sum over '%s')\n",
                    s, L->name, joint_text(pl, L), L->joint, L->within);
    else if (L->ok && L->nsc > 0)
      s = gc_printf("%s  %s  enumerated, factor %s (summed out inside the sum over '%s')\n", s,
                    L->name, L->cost, L->within);
    else if (L->ok && L->chain && L->size > 0)
      s = gc_printf("%s  %s  enumerated, factor %ld x %ld (a chain: forward algorithm)\n%s", s,
                    L->name, k, k,
                    L->fused ? "     its density in one call of the fused kernel (hmm_log_marginal)\n"
                             : "");
    else if (L->ok && L->size >= 0)
      s = gc_printf("%s  %s  enumerated, factor %ld\n", s, L->name, L->size);
    else if (L->ok)
      s = gc_printf("%s  %s  enumerated, factor %s\n", s, L->name, L->cost);
    else
      s = gc_printf("%s  %s  not enumerated: %s\n", s, L->name, L->why);
  }
  /* inner sums first: a latent is eliminated before the one whose segment holds it */
  if (pl->nelim) {
    const char *o = "";
    for (int i = 0; i < pl->nelim; i++) o = gc_printf("%s%s%s", o, *o ? ", " : "", pl->lat[pl->elim[i]].name);
    s = gc_printf("%s  elimination order: %s\n", s, o);
  }
  return s;
}
