/* ld_shard.h — one log density and gradient computed by all the ranks of
 * an MPI job together: the data rows of the statements ir_shard_plan finds
 * (ir/shard.h) are cut into fixed blocks, each rank evaluates its blocks
 * (compiled by the JIT like any log density: a block is the program with
 * its data cut to the block's rows), and every rank adds the blocks' parts
 * in block order.
 *
 * Same bits for every number of ranks: the blocks depend on the number of
 * rows only (LD_SHARD_BLOCKS of them at most), each block's part is the same
 * computation on whichever rank makes it, and the parts are gathered and
 * added in one order.  With rest(theta) the log density without the sharded
 * statements,
 *     lp = rest + sum over blocks b of (lp_b - rest)
 * where lp_b is the program's log density on block b's rows alone; the
 * gradient likewise.  It equals the unsharded log density up to rounding
 * (1e-12 relative in the tests), not bit for bit.
 *
 * Every call is collective: all ranks call it with the same theta. */
#ifndef PPL_LD_SHARD_H
#define PPL_LD_SHARD_H

#include "logdensity.h"
#include "mpi_run.h"

#define LD_SHARD_BLOCKS 256

typedef struct LdShard LdShard;

/* The sharded density of in's program and data over comm (NULL: this
 * process alone, all blocks here: the same numbers, for tests).  nblocks 0:
 * min(rows, LD_SHARD_BLOCKS).  NULL with *why (GC) when the program has no
 * rows to split (ir_shard_plan's reason), or with d on an error. */
LdShard *ld_shard_new(const Interp *in, const MpiComm *comm, int nblocks, bool jit,
                      const char **why, Diag *d);
/* lp and its gradient (ld_dim reals) at theta.  A program error at theta in
 * any block is an error on every rank (DIAG_RUNTIME: the point is
 * impossible, as for ld_eval_grad); lp -inf when rest is. */
bool ld_shard_eval_grad(LdShard *s, const double *theta, double *lp, double *grad, Diag *d);
/* Blocks, and this rank's share of them ([*first, *first + *count)). */
int ld_shard_blocks(const LdShard *s, int *first, int *count);
/* Evaluations so far, and their totals on this rank: the thread's CPU
 * seconds in its blocks, and the wall seconds of the exchange (waiting for
 * the slowest rank included).  For benchmarks. */
void ld_shard_times(const LdShard *s, long *evals, double *cpu_blocks, double *wall_exchange);
/* "the rows of N (X, y): 1000000 rows in 256 blocks" */
const char *ld_shard_describe(const LdShard *s);
/* Release the compiled code. */
void ld_shard_free(LdShard *s);

#endif
