/* scalar_rule.c — the scalar rules of scalar_rule.h as descriptions (the
 * JIT's input), their evaluator and their check.  The C that the
 * interpreter and the tape run is the header's inline expansion of the same
 * lists. */
#include "scalar_rule.h"

#include <string.h>

#define SR_INS(name, nargs, v, da, db)                                                            \
  static const DkIns sr_ins_##name[] = {SR_V_##name(DK_TABLE) SR_D_##name(DK_TABLE)};             \
  static const DkIns sr_vins_##name[] = {SR_V_##name(DK_TABLE)};
SR_RULES(SR_INS)
#undef SR_INS

#define SR_ROW(name, nargs, v, da, db)                                                            \
  [SR_##name] = {#name, sr_ins_##name, (int)(sizeof sr_ins_##name / sizeof(DkIns)),               \
                 (int)(sizeof sr_vins_##name / sizeof(DkIns)), nargs, v, da, db},
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
  const DkIns *in = sr_writer(r, which ? r->db : r->da);
  if (!in || in->op != DK_CONST) return false;
  *k = in->k;
  return true;
}

double sr_eval(const ScalarRule *r, double a, double b, double *da, double *db) {
  double reg[DK_MAXREG];
  reg[SR_A] = a;
  reg[SR_B] = b;
  dk_run(r->ins, NULL, 0, r->n, reg);
  *da = reg[r->da];
  *db = r->db == DK_NONE ? 0.0 : reg[r->db];
  return reg[r->v];
}

bool sr_valid(const ScalarRule *r) {
  if (r->nv < 1 || r->n < r->nv || DK_FIRST + r->n > SR_NREG) return false;
  if (r->v < DK_FIRST || r->v >= DK_FIRST + r->nv) return false;
  for (int i = 0; i < r->n; i++) {
    const DkIns *in = &r->ins[i];
    int nargs = dk_nargs(in->op);
    if (nargs < 0) return false;
    const uint8_t reg[3] = {in->a, in->b, in->c};
    for (int j = 0; j < nargs; j++) {
      int x = reg[j];
      if (x == SR_A || (x == SR_B && r->nargs == 2)) continue;
      if (x < DK_FIRST || x >= DK_FIRST + i) return false; /* unwritten */
      /* the partials see a, b, v and their own registers only */
      if (i >= r->nv && x != r->v && x < DK_FIRST + r->nv) return false;
    }
  }
  const uint8_t out[2] = {r->da, r->db};
  for (int j = 0; j < 2; j++) {
    int x = out[j];
    if (j == 1 && r->nargs == 1) {
      if (x != DK_NONE) return false;
      continue;
    }
    if (x == SR_A || (x == SR_B && r->nargs == 2) || x == r->v) continue;
    if (x < DK_FIRST + r->nv || x >= DK_FIRST + r->n) return false;
  }
  return true;
}
