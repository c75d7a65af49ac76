/* smc_mpi.c — engine smc's compiled population spread over the ranks of an
 * MPI job (issue 18; docs/scaling.md).
 *
 * Every rank runs the chain in step with the same seed.  Rank q advances only
 * the particles [lo[q], lo[q+1]) (pc_exec on its range), a run of whole
 * blocks of the normaliser (resample.h); the uniform part of the program and
 * the genealogy are the whole population's on every rank.  After each event
 * the ranks allgather what the bookkeeping needs: each particle's log weight
 * increment, whether it was killed, and the values it drew for the latents
 * whose histories are kept.  The weights are each rank's own: it summarises
 * its blocks (max, sum-exp), the summaries are allgathered and combined in
 * block order on every rank, and it computes only its own particles'
 * weights.  At a systematic or stratified resampling each rank finds the
 * offspring of its own ancestors from the block totals (allgathered) and the
 * points drawn from the chain's Rng, and the ancestor indices are
 * allgathered; multinomial and residual draw every ancestor on every rank.
 * Only the offspring whose ancestor another rank holds travel, as their
 * columns (one MPI_Alltoallv per resampling, each ancestor once per
 * receiving rank), and each rank copies only its own offspring's columns
 * (pc_resample_range).  The single process uses the same blocks, so the
 * bits are the same for every R.  A particle draws from
 * its own stream, which the resampling reseeds by its index, so a particle
 * computes the same bits wherever it runs: the run is the single-process run
 * for every number of ranks.  At the end of a run the ranks allgather the
 * final particles, so every rank hands out the same draws (rank 0 writes).
 *
 * Populations the interpreter advances (suspended executions, which cannot
 * be sent) and columns that hold more than numbers are not split: every rank
 * runs the whole population, as without this file (smcm_why_not says why).
 */
#include <limits.h>
#include <string.h>

#include "smc_impl.h"
#include "smc_mpi.h"

struct SmcSplit {
  const MpiComm *comm;
  int R, me;
  int *lo;                   /* [R + 1]: rank q runs particles [lo[q], lo[q+1]) */
  int *scount, *sdispl, *rcount, *rdispl; /* [R], in doubles */
  double *a, *b;             /* scratch */
  size_t na, nb;
  /* the normaliser's fixed blocks (resample.h): rank q holds the blocks
     [blo[q], blo[q+1]), whose particles are its range */
  int nblk;
  int *blo;                  /* [R + 1] */
  WeightBlock *blk;          /* [nblk]: every block's summary, this event */
  double *T;                 /* [nblk]: every block's total weight, at resampling */
  double *u;                 /* [N]: stratified points */
  double mx, sum;            /* this event's combined normaliser */
};

static double *smcm_scratch(double **p, size_t *cap, size_t n) {
  if (n > *cap) {
    *p = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
    *cap = n;
  }
  return *p;
}

static bool smcm_fail(Diag *d, const char *what) {
  diag_error(d, DIAG_IO, (SrcPos){0}, "MPI: smc could not %s between the ranks", what);
  return false;
}

static int smcm_owner(const SmcSplit *m, int i) {
  int q = 0;
  while (i >= m->lo[q + 1]) q++;
  return q;
}

const char *smcm_why_not(const SmcState *s) {
  if (!s->pcr) return gc_printf("interpreted: %s", s->pc_why ? s->pc_why : "not compiled");
  const char *why = NULL;
  if (!pc_sendable(pc_run_prog(s->pcr), &why)) return why;
  /* one message holds a round's records or the final population */
  int w = pc_width(pc_run_prog(s->pcr)) + 2 + 64;
  if ((long long)s->N * w > INT_MAX) return "too many particles for one MPI message";
  return NULL;
}

void smcm_setup(SmcState *s) {
  s->split = NULL;
  s->mlo = 0;
  s->mhi = s->N;
  int R = mpi_size(s->o.comm);
  if (R < 2 || smcm_why_not(s)) return;
  SmcSplit *m = gc_alloc(sizeof *m);
  m->comm = s->o.comm;
  m->R = R;
  m->me = mpi_rank(s->o.comm);
  m->lo = gc_alloc_atomic(sizeof(int) * (size_t)(R + 1));
  /* contiguous ranges of whole blocks (which start at multiples of 8, the
     column loops' vectors) */
  m->nblk = resample_nblocks(s->N);
  m->blo = gc_alloc_atomic(sizeof(int) * (size_t)(R + 1));
  for (int q = 0; q <= R; q++) {
    m->blo[q] = (int)((long long)m->nblk * q / R);
    m->lo[q] = resample_block_lo(s->N, m->blo[q]);
  }
  m->blk = gc_alloc_atomic(sizeof(WeightBlock) * (size_t)m->nblk);
  m->T = gc_alloc_atomic(sizeof(double) * (size_t)m->nblk);
  m->u = resample_blocked(s->scheme) && s->scheme != RESAMPLE_SYSTEMATIC
             ? gc_alloc_atomic(sizeof(double) * (size_t)s->N)
             : NULL;
  m->scount = gc_alloc_atomic(sizeof(int) * 4 * (size_t)R);
  m->sdispl = m->scount + R;
  m->rcount = m->sdispl + R;
  m->rdispl = m->rcount + R;
  s->split = m;
  s->mlo = m->lo[m->me];
  s->mhi = m->lo[m->me + 1];
}

/* The counts and displacements of rec doubles per particle, rank by rank. */
static void smcm_layout(SmcSplit *m, int rec) {
  for (int q = 0; q < m->R; q++) {
    m->rcount[q] = (m->lo[q + 1] - m->lo[q]) * rec;
    m->rdispl[q] = m->lo[q] * rec;
  }
}

bool smcm_share_round(SmcState *s, Diag *d) {
  SmcSplit *m = s->split;
  PcRun *r = s->pcr;
  int N = s->N, np = pc_seg_paths(r, NULL), rec = 2 + np;
  double **pv = gc_alloc(sizeof(double *) * (size_t)(np + 1));
  pc_seg_paths(r, pv);
  double *mine = smcm_scratch(&m->a, &m->na, (size_t)(s->mhi - s->mlo) * (size_t)rec);
  double *all = smcm_scratch(&m->b, &m->nb, (size_t)N * (size_t)rec);
  for (int i = s->mlo; i < s->mhi; i++) {
    double *x = mine + (size_t)(i - s->mlo) * (size_t)rec;
    x[0] = s->inc[i];
    x[1] = s->perr[i] != NULL;
    for (int k = 0; k < np; k++) x[2 + k] = pv[k][i];
  }
  smcm_layout(m, rec);
  if (!mpi_allgatherv(m->comm, mine, all, m->rcount, m->rdispl)) return smcm_fail(d, "share a round's weights");
  int first = -1; /* the lowest particle killed now: its message may be the run's first error */
  for (int i = 0; i < N; i++) {
    if (i < s->mlo || i >= s->mhi) {
      const double *x = all + (size_t)i * (size_t)rec;
      s->inc[i] = x[0];
      for (int k = 0; k < np; k++) pv[k][i] = x[2 + k];
      pc_settle(r, i, x[1] != 0);
      s->perr[i] = x[1] != 0 ? "" : NULL;
    }
    if (first < 0 && s->perr[i]) first = i;
  }
  if (first >= 0 && !s->first_err[0]) {
    int owner = smcm_owner(m, first);
    void *msg = owner == m->me ? (void *)s->perr[first] : NULL;
    size_t n = msg ? strlen(msg) + 1 : 0;
    if (!mpi_bcast_blob(m->comm, &msg, &n, owner)) return smcm_fail(d, "share an error message");
    if (owner != m->me) ((char *)msg)[n ? n - 1 : 0] = 0;
    s->perr[first] = msg;
  }
  return true;
}

/* The counts and displacements of per doubles per block, rank by rank. */
static void smcm_block_layout(SmcSplit *m, int per) {
  for (int q = 0; q < m->R; q++) {
    m->rcount[q] = (m->blo[q + 1] - m->blo[q]) * per;
    m->rdispl[q] = m->blo[q] * per;
  }
}

bool smcm_normalise(SmcState *s, double *lz, double *ess, Diag *d) {
  SmcSplit *m = s->split;
  int N = s->N;
  for (int b = m->blo[m->me]; b < m->blo[m->me + 1]; b++)
    resample_block(s->lw, resample_block_lo(N, b), resample_block_lo(N, b + 1), &m->blk[b], s->w);
  /* a block's summary is three doubles; gathered in place */
  _Static_assert(sizeof(WeightBlock) == 3 * sizeof(double), "WeightBlock travels as 3 doubles");
  smcm_block_layout(m, 3);
  double *all = (double *)m->blk;
  double *mine = smcm_scratch(&m->a, &m->na, (size_t)m->rcount[m->me]);
  memcpy(mine, all + m->rdispl[m->me], sizeof(double) * (size_t)m->rcount[m->me]);
  if (!mpi_allgatherv(m->comm, mine, all, m->rcount, m->rdispl)) return smcm_fail(d, "share the weights' block sums");
  *lz = resample_combine(N, m->nblk, m->blk, &m->mx, &m->sum, ess);
  resample_weights(N, m->blo[m->me], m->blo[m->me + 1], m->blk, m->mx, m->sum, NULL, s->w);
  return true;
}

/* The weights of the other ranks' particles, from the log weights every rank
 * holds and this event's normaliser: the bits their owners computed. */
static void smcm_other_weights(SmcState *s) {
  SmcSplit *m = s->split;
  resample_weights(s->N, 0, m->blo[m->me], m->blk, m->mx, m->sum, s->lw, s->w);
  resample_weights(s->N, m->blo[m->me + 1], m->nblk, m->blk, m->mx, m->sum, s->lw, s->w);
}

bool smcm_ancestors(SmcState *s, Diag *d) {
  SmcSplit *m = s->split;
  int N = s->N, me = m->me;
  if (!resample_blocked(s->scheme)) { /* every rank draws every ancestor */
    smcm_other_weights(s);
    resample(s->scheme, N, s->w, &s->rng, s->anc);
    return true;
  }
  double v;
  resample_points(s->scheme, N, &s->rng, m->u, &v);
  resample_block_totals(N, s->w, m->blo[me], m->blo[me + 1], m->T);
  smcm_block_layout(m, 1);
  double *mine = smcm_scratch(&m->a, &m->na, (size_t)m->rcount[me]);
  memcpy(mine, m->T + m->rdispl[me], sizeof(double) * (size_t)m->rcount[me]);
  if (!mpi_allgatherv(m->comm, mine, m->T, m->rcount, m->rdispl)) return smcm_fail(d, "share the weights' block totals");
  /* this rank's ancestors' offspring, then everyone's (sorted ancestors: rank
     q's offspring are the run [K_q, K_q+1)) */
  resample_blocks_anc(N, s->w, m->T, m->u, v, m->blo[me], m->blo[me + 1], s->anc);
  int k0 = 0;
  for (int q = 0; q < m->R; q++) {
    int k1 = resample_offspring_lo(N, m->T, m->u, v, m->blo[q + 1]);
    m->rcount[q] = k1 - k0;
    m->rdispl[q] = k0;
    k0 = k1;
  }
  mine = smcm_scratch(&m->a, &m->na, (size_t)m->rcount[me]);
  for (int k = 0; k < m->rcount[me]; k++) mine[k] = s->anc[m->rdispl[me] + k];
  double *all = smcm_scratch(&m->b, &m->nb, (size_t)N);
  if (!mpi_allgatherv(m->comm, mine, all, m->rcount, m->rdispl)) return smcm_fail(d, "share the ancestors");
  for (int k = 0; k < N; k++) s->anc[k] = (int)all[k];
  return true;
}

bool smcm_exchange(SmcState *s, Diag *d) {
  SmcSplit *m = s->split;
  PcRun *r = s->pcr;
  const int *anc = s->anc;
  int w = pc_width(pc_run_prog(r)), me = m->me;
  /* the same walk on both sides: the offspring of rank q's range, each
     distinct ancestor held by rank p once (the ancestors are sorted) */
#define WALK(q, p, BODY)                                                     \
  for (int j = m->lo[q], prev = -1; j < m->lo[(q) + 1]; j++) {               \
    int a = anc[j];                                                          \
    if (a == prev || a < m->lo[p] || a >= m->lo[(p) + 1]) continue;          \
    prev = a;                                                                \
    BODY;                                                                    \
  }
  int ns = 0, nr = 0;
  for (int q = 0; q < m->R; q++) {
    int k = 0, l = 0;
    if (q != me) {
      WALK(q, me, k++);
      WALK(me, q, l++);
    }
    m->scount[q] = k * w, m->sdispl[q] = ns * w, ns += k;
    m->rcount[q] = l * w, m->rdispl[q] = nr * w, nr += l;
  }
  double *send = smcm_scratch(&m->a, &m->na, (size_t)ns * (size_t)w);
  double *recv = smcm_scratch(&m->b, &m->nb, (size_t)nr * (size_t)w);
  int at = 0;
  for (int q = 0; q < m->R; q++)
    if (q != me) WALK(q, me, pc_pack(r, a, send + (size_t)w * (size_t)at++));
  if (!mpi_alltoallv(m->comm, send, m->scount, m->sdispl, recv, m->rcount, m->rdispl))
    return smcm_fail(d, "exchange the resampled particles");
  /* an ancestor from another rank lands in its own (stale) slot here, where
     pc_resample reads it */
  at = 0;
  for (int p = 0; p < m->R; p++)
    if (p != me) WALK(me, p, pc_unpack(r, a, recv + (size_t)w * (size_t)at++));
#undef WALK
  return true;
}

bool smcm_gather(SmcState *s, Diag *d) {
  SmcSplit *m = s->split;
  PcRun *r = s->pcr;
  int w = pc_width(pc_run_prog(r));
  double *mine = smcm_scratch(&m->a, &m->na, (size_t)(s->mhi - s->mlo) * (size_t)w);
  double *all = smcm_scratch(&m->b, &m->nb, (size_t)s->N * (size_t)w);
  for (int i = s->mlo; i < s->mhi; i++) pc_pack(r, i, mine + (size_t)(i - s->mlo) * (size_t)w);
  smcm_layout(m, w);
  if (!mpi_allgatherv(m->comm, mine, all, m->rcount, m->rdispl)) return smcm_fail(d, "gather the final particles");
  for (int i = 0; i < s->N; i++)
    if (i < s->mlo || i >= s->mhi) pc_unpack(r, i, all + (size_t)i * (size_t)w);
  smcm_other_weights(s); /* the draws' weights, the evidence's genealogy */
  return true;
}

const char *smcm_plan(const Interp *in, const EngineOpts *o, int R) {
  EngineOpts one = *o;
  one.comm = NULL;
  Diag d;
  diag_init(&d);
  SmcState *s = engine_smc.init(in, &one, 0, &d);
  if (!s) return NULL;
  const char *why = smcm_why_not(s);
  if (why)
    return gc_printf("MPI: each of the %d ranks runs every chain's whole population in step; rank 0 "
                     "writes (particles not split: %s)", R, why);
  return gc_printf("MPI: each chain's %d particles are split over %d ranks in contiguous ranges "
                   "of whole blocks (log weights allgathered, each rank normalising and "
                   "resampling its own blocks, only offspring that change rank sent), the "
                   "chains one after another", s->N, R);
}
