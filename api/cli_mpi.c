/* cli_mpi.c — MPI's start and end for the `ppl` command (cli_mpi.h).  The
 * command's own state, not the library's: one process, one world. */
#include "cli_mpi.h"

#include <stdlib.h>

#include "ppl_config.h"

#if PPL_HAVE_MPI
#include <mpi.h>

static MPI_Comm world;
static int rank, size = 1;

static void cli_mpi_end(void) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

const void *cli_mpi_start(int *argc, char ***argv) {
  if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) return NULL;
  int provided = 0;
  /* chains run in threads; the MPI calls of a run come from one at a time */
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) return NULL;
  atexit(cli_mpi_end);
  world = MPI_COMM_WORLD;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  return &world;
}

int cli_mpi_rank(void) { return rank; }
int cli_mpi_size(void) { return size; }

#else

const void *cli_mpi_start(int *argc, char ***argv) { return NULL; }
int cli_mpi_rank(void) { return 0; }
int cli_mpi_size(void) { return 1; }

#endif
