/* cli_mpi.h — the `ppl` command under mpirun (docs/scaling.md): MPI is
 * started when the launcher's variables say so, and the world communicator
 * is handed to the runs through ppl_run_set_mpi.  The library itself never
 * starts MPI: a host embedding ppl.h passes its own communicator. */
#ifndef PPL_CLI_MPI_H
#define PPL_CLI_MPI_H

/* Under mpirun/srun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set) and
 * in a build with MPI: MPI_Init_thread, and MPI_Finalize at exit.  Returns
 * the world communicator (a pointer to an MPI_Comm), or NULL when the
 * command runs alone. */
const void *cli_mpi_start(int *argc, char ***argv);
/* This process's rank (0 alone), and the number of ranks (1 alone). */
int cli_mpi_rank(void);
int cli_mpi_size(void);

#endif
