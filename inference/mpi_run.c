/* mpi_run.c — the run's communicator over MPI (mpi_run.h), and the byte packing of
 * what ranks send each other.  Built with or without MPI: without it (or
 * with a NULL communicator) every operation is the one-process identity, so
 * the driver and the engines call these functions unconditionally. */
#include "mpi_run.h"

#include <limits.h>
#include <string.h>

#include "../core/value.h"
#include "ppl_config.h"

#if PPL_HAVE_MPI
#include <mpi.h>

struct MpiComm {
  MPI_Comm comm;
  int rank, size;
};

bool mpi_built(void) { return true; }

MpiComm *mpi_comm_new(const void *comm) {
  int init = 0, fin = 0;
  if (!comm || MPI_Initialized(&init) != MPI_SUCCESS || !init) return NULL;
  if (MPI_Finalized(&fin) != MPI_SUCCESS || fin) return NULL;
  MpiComm *c = gc_alloc_atomic(sizeof *c);
  c->comm = *(const MPI_Comm *)comm;
  if (MPI_Comm_rank(c->comm, &c->rank) != MPI_SUCCESS ||
      MPI_Comm_size(c->comm, &c->size) != MPI_SUCCESS)
    return NULL;
  return c;
}

int mpi_rank(const MpiComm *c) { return c ? c->rank : 0; }
int mpi_size(const MpiComm *c) { return c ? c->size : 1; }

/* MPI counts are ints: larger buffers go in pieces */
bool mpi_bcast(const MpiComm *c, void *buf, size_t n, int root) {
  if (!c || c->size == 1) return true;
  for (size_t at = 0; at < n;) {
    int k = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
    if (MPI_Bcast((char *)buf + at, k, MPI_BYTE, root, c->comm) != MPI_SUCCESS) return false;
    at += (size_t)k;
  }
  return true;
}

bool mpi_allgather(const MpiComm *c, const double *mine, size_t n, double *all) {
  if (!c || c->size == 1) {
    if (all != mine) memcpy(all, mine, sizeof(double) * n);
    return true;
  }
  if (n > (size_t)INT_MAX) return false;
  return MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, c->comm) == MPI_SUCCESS;
}

bool mpi_allgatherv(const MpiComm *c, const double *mine, double *all, const int *count,
                    const int *displ) {
  if (!c || c->size == 1) {
    if (all + displ[0] != mine) memmove(all + displ[0], mine, sizeof(double) * (size_t)count[0]);
    return true;
  }
  /* a rank's part already in place (mine inside all) is MPI_IN_PLACE: MPI
     forbids a send buffer that overlaps the receive buffer */
  const void *send = mine == all + displ[c->rank] ? MPI_IN_PLACE : (const void *)mine;
  return MPI_Allgatherv(send, count[c->rank], MPI_DOUBLE, all, count, displ, MPI_DOUBLE,
                        c->comm) == MPI_SUCCESS;
}

bool mpi_alltoallv(const MpiComm *c, const double *send, const int *scount, const int *sdispl,
                   double *recv, const int *rcount, const int *rdispl) {
  if (!c || c->size == 1) {
    memmove(recv + rdispl[0], send + sdispl[0], sizeof(double) * (size_t)scount[0]);
    return true;
  }
  return MPI_Alltoallv(send, scount, sdispl, MPI_DOUBLE, recv, rcount, rdispl, MPI_DOUBLE,
                       c->comm) == MPI_SUCCESS;
}

bool mpi_allreduce_sum(const MpiComm *c, double *x, size_t n) {
  if (!c || c->size == 1) return true;
  if (n > (size_t)INT_MAX) return false;
  return MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, c->comm) == MPI_SUCCESS;
}

bool mpi_allreduce_or(const MpiComm *c, bool *flag) {
  if (!c || c->size == 1) return true;
  int v = *flag;
  if (MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, c->comm) != MPI_SUCCESS) return false;
  *flag = v != 0;
  return true;
}

#else /* no MPI in this build: no communicator can exist */

bool mpi_built(void) { return false; }
MpiComm *mpi_comm_new(const void *comm) { return NULL; }
int mpi_rank(const MpiComm *c) { return 0; }
int mpi_size(const MpiComm *c) { return 1; }
bool mpi_bcast(const MpiComm *c, void *buf, size_t n, int root) { return true; }
bool mpi_allgather(const MpiComm *c, const double *mine, size_t n, double *all) {
  if (all != mine) memcpy(all, mine, sizeof(double) * n);
  return true;
}
bool mpi_allgatherv(const MpiComm *c, const double *mine, double *all, const int *count,
                    const int *displ) {
  if (all + displ[0] != mine) memmove(all + displ[0], mine, sizeof(double) * (size_t)count[0]);
  return true;
}
bool mpi_alltoallv(const MpiComm *c, const double *send, const int *scount, const int *sdispl,
                   double *recv, const int *rcount, const int *rdispl) {
  memmove(recv + rdispl[0], send + sdispl[0], sizeof(double) * (size_t)scount[0]);
  return true;
}
bool mpi_allreduce_sum(const MpiComm *c, double *x, size_t n) { return true; }
bool mpi_allreduce_or(const MpiComm *c, bool *flag) { return true; }

#endif

bool mpi_bcast_blob(const MpiComm *c, void **buf, size_t *n, int root) {
  if (mpi_size(c) == 1) return true;
  uint64_t len = *n;
  if (!mpi_bcast(c, &len, sizeof len, root)) return false;
  if (mpi_rank(c) != root) {
    *n = (size_t)len;
    *buf = gc_alloc_atomic(len ? (size_t)len : 1);
  }
  return mpi_bcast(c, *buf, (size_t)len, root);
}

void mpi_share(int64_t n, int R, int q, int64_t *first, int64_t *count) {
  *first = n * q / R;
  *count = n * (q + 1) / R - *first;
}

int mpi_share_owner(int64_t n, int R, int64_t j) {
  for (int q = 0; q < R; q++)
    if (j < n * (q + 1) / R) return q;
  return R - 1;
}

void mpi_bcast_diag(const MpiComm *c, int owner, const Diag *mine, Diag *d) {
  struct {
    int32_t code;
    char msg[sizeof d->msg];
  } m = {0};
  if (mine && mpi_rank(c) == owner) {
    m.code = (int32_t)mine->code;
    memcpy(m.msg, mine->msg, sizeof m.msg);
  }
  if (!mpi_bcast(c, &m, sizeof m, owner)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "MPI could not send rank %d's error", owner);
    return;
  }
  m.msg[sizeof m.msg - 1] = 0;
  diag_error(d, (DiagCode)m.code, (SrcPos){0}, "%s", m.msg);
}

/* ---- packing ------------------------------------------------------------ */

void mpi_put(MpiPack *b, const void *x, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    char *p = gc_alloc_atomic(cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p, b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, x, n);
  b->n += n;
}

void mpi_put_int(MpiPack *b, int64_t v) { mpi_put(b, &v, sizeof v); }
void mpi_put_real(MpiPack *b, double v) { mpi_put(b, &v, sizeof v); }

void mpi_put_str(MpiPack *b, const char *s) {
  mpi_put_int(b, s ? (int64_t)strlen(s) : -1);
  if (s) mpi_put(b, s, strlen(s));
}

void mpi_get(MpiPack *b, void *x, size_t n) {
  if (b->bad || b->at + n > b->n) {
    b->bad = true;
    memset(x, 0, n);
    return;
  }
  memcpy(x, b->p + b->at, n);
  b->at += n;
}

int64_t mpi_get_int(MpiPack *b) {
  int64_t v;
  mpi_get(b, &v, sizeof v);
  return v;
}

double mpi_get_real(MpiPack *b) {
  double v;
  mpi_get(b, &v, sizeof v);
  return v;
}

const char *mpi_get_str(MpiPack *b) {
  int64_t len = mpi_get_int(b);
  if (len < 0 || b->bad) return NULL;
  if ((size_t)len > b->n - b->at) {
    b->bad = true;
    return NULL;
  }
  char *s = gc_alloc_atomic((size_t)len + 1);
  mpi_get(b, s, (size_t)len);
  return s;
}
