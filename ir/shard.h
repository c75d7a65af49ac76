/* shard.h — which statements of a model sum over independent data rows, so
 * that the rows can be split between the ranks of an MPI job (Stan's
 * reduce_sum use case with nothing marked; docs/scaling.md).
 *
 * A program is sharded along one data size N when its log density is
 *     lp(theta) = rest(theta) + sum over rows n of f(theta, row n of the data)
 * with the rows being the first index of some data variables ("row data",
 * declared with N as their first size).  That holds, and ir_shard_plan
 * finds it, when every use of N and of the row data in the model block is
 *   - a top-level loop `for (n in 1:N)` whose body reads the row data only
 *     at row n (x[n], y[n, k]), uses n for nothing else, draws no latent,
 *     and writes no variable that is read after the loop; or
 *   - a vectorised observation `y ~ family(...)` of a scalar family whose
 *     observed value and parameters are row data, scalars, or computed from
 *     them row by row (x * beta with x row data, +, -, .*, ./, unary minus,
 *     elementwise functions, vector[N] declarations and copies);
 * and the data block uses them only as declared (no transformed data from
 * the rows).  The generated block is not split (draws use the whole data).
 * Then the log density of the rows lo..hi is the program's with the row data
 * cut to those rows and N = hi - lo + 1, minus rest(theta), which is the
 * program without the sharded statements (ir_shard_rest). */
#ifndef PPL_IR_SHARD_H
#define PPL_IR_SHARD_H

#include "ir.h"

typedef struct IrShard {
  const char *why;        /* NULL when the program can be sharded; else why not,
                             with a position where there is one */
  int size_reg;           /* main's register of N (an IR_DATA int) */
  const char *size_name;  /* "N" */
  int ndata;
  const char **data;      /* the row data variables' names */
  int *data_reg;          /* and registers */
  int nstmts;
  int *stmts;             /* indices into model_b of the sharded statements */
  SrcPos *pos;            /* their positions */
  const char **what;      /* "for loop over n", "y ~ bernoulli_logit" */
} IrShard;

/* The plan of p (never NULL; GC memory). */
IrShard *ir_shard_plan(const IrProgram *p);
/* p without the sharded statements in its model block (everything else
 * shared with p): its log density is rest(theta). */
IrProgram *ir_shard_rest(const IrProgram *p, const IrShard *s);
/* For `ppl check`: "sharded (MPI): rows of N: model.ppl:9:3 (y ~ normal), ...\n"
 * or "sharded (MPI): none: <why>\n". */
char *ir_shard_print(const IrShard *s);

#endif
