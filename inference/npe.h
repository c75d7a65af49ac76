/* npe.h — neural posterior estimation, the whole-program form of amortized
 * inference (npe.c): `ppl train --amortize` trains a conditional normalizing
 * flow q(theta | s(x)) on pairs (theta, x) simulated from the program's own
 * prior predictive (simulate.h), and the engine amortized draws from it for
 * observed data in one pass, with no further optimisation.
 *
 * theta is the program's unconstrained vector (logdensity.h), so every
 * fixed-structure continuous program can be amortized and the draws are
 * mapped and written as any engine's.  x is the program's observed data (the
 * data variables its observations read); s is a summary network: a deep set
 * (a per-element network, mean pooled, then a network on the pool: invariant
 * to the order of exchangeable observations, those a plate indexes), and an
 * MLP over the rest.  q is Real NVP (stdlib/realnvp.h) whose coupling
 * networks also read s(x).  Training minimises -E[log q(theta | s(x))] over
 * the simulations (Papamakarios & Murray 2016; Greenberg et al. 2019), with
 * Adam (stdlib/optim.h) over minibatches; the file it writes
 * (stdlib/safetensors.h, kind ST_KIND_NPE) holds both networks and the
 * standardisation of theta and x.
 */
#ifndef PPL_NPE_H
#define PPL_NPE_H

#include "engine.h"

/* `ppl train --amortize`'s options (simulations, epochs, batch, the flow's and
 * the summary network's sizes, the optimiser's), ending with OPT_END; the
 * amortized engine's training options. */
extern const OptSpec npe_options[];

/* What a training run did, for the CLI's last line and the tests. */
typedef struct NpeTrainInfo {
  long simulations;    /* pairs simulated (and kept: finite theta and x) */
  int epochs;          /* passes over them completed */
  double loss;         /* the last epoch's mean -log q(theta | x) on held-out pairs */
  double seconds;      /* simulating and training */
  bool interrupted;    /* stopped by EngineOpts.interrupt: what it had was saved */
} NpeTrainInfo;

/* Simulate from the program p (its data block read from data: the sizes and
 * inputs the simulations keep fixed; the observed variables' values, if data
 * has them, are not used), train, and write the file `save`.  o gives the
 * options (npe_options), seed, threads, progress (unit "epoch") and interrupt.
 * False + d: the program cannot be amortized (not a fixed structure, a
 * discrete latent, no observed data: the message says which) or it failed.
 * With a communicator (o->comm) every rank calls it: the ranks share the
 * simulations and each step's gradient blocks (--grad-blocks, 8 by default
 * there), every rank ends with the same weights, rank 0 writes `save`, and
 * the file is the single process's with the same --grad-blocks. */
bool npe_train(const IrProgram *p, DataSource *data, const EngineOpts *o, const char *save,
               NpeTrainInfo *info, Diag *d);

/* The amortized engine's half for npe files: each chain reads the file (the
 * run's --load option), embeds the observed data of `in` once, and each step
 * draws theta ~ q(. | s(x)) and writes it as a draw, with log p - log q as its
 * log importance weight (EngineVT.vi_report: PSIS k-hat, log evidence,
 * --psis-resample).  Not in the engine list: engine amortized forwards to it
 * when the file's kind is ST_KIND_NPE. */
extern const EngineVT npe_draws;

/* npe_draws's init with the --load file already read (decoded and checked
 * against the program: the engine amortized's, which reads it once), or
 * f NULL to read it. */
struct StFile;
void *npe_init_loaded(const Interp *in, const EngineOpts *o, int chain, const struct StFile *f,
                      Diag *d);

#endif
