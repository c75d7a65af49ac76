/* scalar_rule.c — the scalar rules of scalar_rule.h as descriptions (the
 * JIT's input), their evaluator and their check.  The C that the
 * interpreter and the tape run is the header's inline expansion of the same
 * lists. */
#include "scalar_rule.h"

#include <string.h>

#define SR_INS(name, nargs, v, da, db, dc, ok)                                                            \
  static const DkIns sr_ins_##name[] = {SR_V_##name(DK_TABLE) SR_D_##name(DK_TABLE)};             \
  static const DkIns sr_vins_##name[] = {SR_V_##name(DK_TABLE)};
SR_RULES(SR_INS)
#undef SR_INS

#define SR_ROW(name, nargs, v, da, db, dc, ok)                                                    \
  [SR_##name] = {#name, sr_ins_##name, (int)(sizeof sr_ins_##name / sizeof(DkIns)),               \
                 (int)(sizeof sr_vins_##name / sizeof(DkIns)), nargs, v, da, db, dc, ok},
const ScalarRule sr_rules[SR_NRULES] = {SR_RULES(SR_ROW)};
#undef SR_ROW

/* The builtins lowered natively, by their names in stdlib/builtins_math.c
   (abs of a real is fabs; of an int it stays an int and is not a rule's). */
static const struct {
  const char *name;
  SrRule rule;
} sr_builtins[] = {
    {"exp", SR_exp},       {"log", SR_log},           {"log1p", SR_log1p},
    {"expm1", SR_expm1},   {"sqrt", SR_sqrt},         {"square", SR_square},
    {"inv", SR_inv},       {"inv_sqrt", SR_inv_sqrt}, {"inv_square", SR_inv_square},
    {"fabs", SR_fabs},     {"abs", SR_fabs},          {"pow", SR_pow},
    {"fmod", SR_mod},
    {"log1p_exp", SR_log1p_exp}, {"inv_logit", SR_inv_logit}, {"log_inv_logit", SR_log_inv_logit},
    {"log1m_inv_logit", SR_log1m_inv_logit}, {"logit", SR_logit}, {"log1m", SR_log1m},
    {"inv_cloglog", SR_inv_cloglog}, {"log_sum_exp", SR_log_sum_exp}, {"log_mix", SR_log_mix},
    {"fma", SR_fma}, {"fmin", SR_fmin}, {"fmax", SR_fmax}, {"lgamma", SR_lgamma},
    {"digamma", SR_digamma}, {"lbeta", SR_lbeta}, {"lchoose", SR_lchoose},
    {"binomial_coefficient_log", SR_lchoose}, {"sin", SR_sin}, {"cos", SR_cos},
    {"tan", SR_tan}, {"asin", SR_asin}, {"acos", SR_acos}, {"atan", SR_atan},
    {"sinh", SR_sinh}, {"cosh", SR_cosh}, {"tanh", SR_tanh}, {"asinh", SR_asinh},
    {"acosh", SR_acosh}, {"atanh", SR_atanh}, {"erf", SR_erf}, {"erfc", SR_erfc},
    {"Phi", SR_Phi}, {"Phi_approx", SR_Phi_approx},
};

const ScalarRule *sr_builtin(const char *name) {
  for (size_t i = 0; i < sizeof sr_builtins / sizeof sr_builtins[0]; i++)
    if (strcmp(sr_builtins[i].name, name) == 0) return &sr_rules[sr_builtins[i].rule];
  return NULL;
}

static const DkIns *sr_writer(const ScalarRule *r, int reg) {
  return reg >= DK_FIRST && reg < DK_FIRST + r->n ? &r->ins[reg - DK_FIRST] : NULL;
}

bool sr_partial_const(const ScalarRule *r, int which, double *k) {
  const DkIns *in = sr_writer(r, which == 2 ? r->dc : which ? r->db : r->da);
  if (!in || in->op != DK_CONST) return false;
  *k = in->k;
  return true;
}

double sr_eval(const ScalarRule *r, double a, double b, double *da, double *db) {
  double dc;
  bool ok;
  return sr_eval3(r, a, b, 0, da, db, &dc, &ok);
}

double sr_eval3(const ScalarRule *r, double a, double b, double c, double *da, double *db,
                double *dc, bool *ok) {
  double reg[DK_MAXREG];
  reg[SR_A] = a;
  reg[SR_B] = b;
  reg[SR_C] = c;
  dk_run(r->ins, NULL, 0, r->n, reg);
  *da = reg[r->da];
  *db = r->db == DK_NONE ? 0.0 : reg[r->db];
  *dc = r->dc == DK_NONE ? 0.0 : reg[r->dc];
  *ok = r->ok == DK_NONE || reg[r->ok] != 0;
  return reg[r->v];
}

static bool sr_operand(const ScalarRule *r, int x) {
  return x == SR_A || (x == SR_B && r->nargs >= 2) || (x == SR_C && r->nargs == 3);
}

bool sr_valid(const ScalarRule *r) {
  if (r->nv < 1 || r->n < r->nv || DK_FIRST + r->n > SR_NREG) return false;
  if (r->v < DK_FIRST || r->v >= DK_FIRST + r->nv) return false;
  for (int i = 0; i < r->n; i++) {
    const DkIns *in = &r->ins[i];
    int nargs = dk_nargs(in->op);
    if (nargs < 0 || !dk_fn_ok(in)) return false;
    const uint8_t reg[3] = {in->a, in->b, in->c};
    for (int j = 0; j < nargs; j++) {
      int x = reg[j];
      if (sr_operand(r, x)) continue;
      if (x < DK_FIRST || x >= DK_FIRST + i) return false; /* unwritten */
      /* the partials see a, b, v and their own registers only */
      if (i >= r->nv && x != r->v && x < DK_FIRST + r->nv) return false;
    }
  }
  const uint8_t out[3] = {r->da, r->db, r->dc};
  for (int j = 0; j < 3; j++) {
    int x = out[j];
    if (j >= r->nargs) {
      if (x != DK_NONE) return false;
      continue;
    }
    if (sr_operand(r, x) || x == r->v) continue;
    if (x < DK_FIRST + r->nv || x >= DK_FIRST + r->n) return false;
  }
  /* ok is a truth value of the value part */
  if (r->ok != DK_NONE) {
    const DkIns *w = sr_writer(r, r->ok);
    if (!w || r->ok >= DK_FIRST + r->nv ||
        !(w->op == DK_EQ || w->op == DK_GT || w->op == DK_GE || w->op == DK_OR || w->op == DK_SEL))
      return false;
  }
  return r->nargs >= 1 && r->nargs <= 3;
}
