/* mpi_run.h — a run's MPI communicator, and the few collective operations the
 * driver, the engines and the log density need to spread one run over the
 * ranks of an MPI job (docs/scaling.md).
 *
 * The library holds no MPI state of its own: the host (the `ppl` command
 * under mpirun, or a program embedding ppl.h) initialises MPI and passes a
 * communicator, which the run carries in EngineOpts.comm.  NULL means one
 * process, and every function below then behaves as on a communicator of
 * size 1, so callers need no #if.  In a build without MPI (-Dmpi=disabled,
 * or none found) mpi_comm_new refuses and nothing else is reachable.
 *
 * Every operation is collective: all ranks of the communicator call it in
 * the same order.  Errors are returned (false), never raised. */
#ifndef PPL_MPI_RUN_H
#define PPL_MPI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/diag.h"

typedef struct MpiComm MpiComm;

/* Blocks of a training step's gradient under MPI when the run names none
 * (--grad-blocks 0): svi's and npe's.  Fixed, so the bits do not depend on
 * the number of ranks. */
#define MPI_TRAIN_BLOCKS 8

/* Whether this build has MPI. */
bool mpi_built(void);
/* The run's communicator from the host's: comm points at an MPI_Comm that
 * stays valid for the run (GC memory).  NULL when the build has no MPI or
 * MPI is not initialised. */
MpiComm *mpi_comm_new(const void *comm);
int mpi_rank(const MpiComm *c); /* 0 without a communicator */
int mpi_size(const MpiComm *c); /* 1 without a communicator */

/* n bytes from root to every rank. */
bool mpi_bcast(const MpiComm *c, void *buf, size_t n, int root);
/* A buffer whose length only root knows: on the other ranks *buf becomes a
 * new GC buffer of *n bytes. */
bool mpi_bcast_blob(const MpiComm *c, void **buf, size_t *n, int root);
/* Each rank gives n doubles; all receives the size * n of every rank, rank
 * by rank. */
bool mpi_allgather(const MpiComm *c, const double *mine, size_t n, double *all);
/* Rank q gives count[q] doubles (mine); all receives them at displ[q]. */
bool mpi_allgatherv(const MpiComm *c, const double *mine, double *all, const int *count,
                    const int *displ);
/* Rank by rank, scount[q] doubles from send + sdispl[q] go to rank q, and
 * rcount[q] doubles from rank q arrive at recv + rdispl[q]. */
bool mpi_alltoallv(const MpiComm *c, const double *send, const int *scount, const int *sdispl,
                   double *recv, const int *rcount, const int *rdispl);
/* Elementwise sum over the ranks of n doubles, in place.  The order of the
 * additions is MPI's: for results that must not depend on the number of
 * ranks, gather the parts and add them in a fixed order instead. */
bool mpi_allreduce_sum(const MpiComm *c, double *x, size_t n);
/* Logical or of one flag over the ranks. */
bool mpi_allreduce_or(const MpiComm *c, bool *flag);

/* Rank q's share of n items among R ranks: [*first, *first + *count),
 * contiguous and in rank order (a rank may have none).  Not collective. */
void mpi_share(int64_t n, int R, int q, int64_t *first, int64_t *count);
/* The rank whose share of n holds item j. */
int mpi_share_owner(int64_t n, int R, int64_t j);
/* The error of rank owner to every rank: mine is its Diag there (ignored on
 * the others), and every rank records it in d.  Where MPI fails, d says so. */
void mpi_bcast_diag(const MpiComm *c, int owner, const Diag *mine, Diag *d);

/* A growing byte buffer for what one rank sends: numbers and strings are
 * put in order and taken back in the same order (the same build on every
 * rank, so native byte order). */
typedef struct MpiPack {
  char *p;
  size_t n, cap, at; /* at: the read position */
  bool bad;          /* read past the end */
} MpiPack;

void mpi_put(MpiPack *b, const void *x, size_t n);
void mpi_put_int(MpiPack *b, int64_t v);
void mpi_put_real(MpiPack *b, double v);
void mpi_put_str(MpiPack *b, const char *s); /* NULL is kept as NULL */
void mpi_get(MpiPack *b, void *x, size_t n);
int64_t mpi_get_int(MpiPack *b);
double mpi_get_real(MpiPack *b);
const char *mpi_get_str(MpiPack *b); /* GC memory */

#endif
