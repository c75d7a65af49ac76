/* motif.h — motifs of learned MCMC proposals (Wang, Wu, Moore & Russell,
 * "Meta-Learning MCMC Proposals", NeurIPS 2018): a block of latents with its
 * Markov blanket, named by a canonical signature, and the network that
 * proposes the block given the blanket, trained once on simulations of the
 * motif and reused by every program in which the motif occurs.
 *
 * A block is one element of a discrete choice with a finite support of K
 * values (z[n] ~ categorical(pi), a binary node of a Bayesian network).  Its
 * children are found at run time, element by element, by probing: the
 * program is replayed with the element set to each of its K values, and the
 * observations and latents whose distribution's parameters change with it are
 * its children (their other parents, the co-parents, enter through those
 * parameters).  The signature names the block's kind and its children's
 * families with the parameters the block moves, "finite->normal(mu)",
 * "finite->bernoulli(theta)", "finite->categorical(theta)+normal(mu)" (an
 * HMM state); K and the number of children are parameters of the motif, not
 * of its signature, so a network trained on K = 3 serves K = 10.
 *
 * The proposal scores each value k of the block,
 *   score_k = log prior(k) + sum over children j of E_c(j)(f_jk),
 * with f_jk three features of child j under value k (normal:
 * r = (y - mu) / sigma, r^2 / 2, log sigma; bernoulli: y, log theta,
 * log(1 - theta); categorical: log theta[y], log(1 - theta[y]), log C) and
 * E_c a small MLP plus a linear term per kind of child c, and proposes
 * softmax(score): a permutation-equivariant per-value scorer.  It is trained
 * by maximum likelihood of the block given its blanket on simulations of the
 * motif with parameters drawn from a broad meta-training distribution.
 * Continuous blocks ("normal->normal(mu)": a component mean with its points)
 * are below, with their mixture density network (motif_cont.c).
 *
 * Everything is GC memory; no global state.
 */
#ifndef PPL_MOTIF_H
#define PPL_MOTIF_H

#include "../stdlib/nn.h"
#include "trace.h"

#define MOTIF_VERSION "1"
#define MOTIF_KIND "lmh"  /* the safetensors "kind" of a proposal file */
#define MOTIF_MAXK 64     /* larger finite supports are left to single-site MH */
#define MOTIF_NFEAT 3
#define MOTIF_MAXKINDS 4  /* kinds of children of one discrete motif */

/* An element of a choice: a cell of a block. */
typedef struct MotifSite {
  const char *addr;
  int elem;
} MotifSite;

/* One probe of a block on a trace: the K replays and the features. */
typedef struct MotifProbe {
  const char *addr;   /* the choice and the element of it that is the block */
  int elem;
  int K;              /* values lo, lo + 1, ..., lo + K - 1 */
  double lo;
  int cur;            /* index of the trace's current value */
  Trace **tr;         /* per value: the replayed trace (NULL: the program rejects it) */
  InterpState **st;
  double *fresh_lp;
  int *block_seen;
  double *lprior;     /* per value: log prior mass, normalised over the K values */
  int nunits;         /* children, element by element */
  double *feat;       /* [nunits][K][MOTIF_NFEAT] */
  const char *sig;    /* the signature, or NULL when this block is not a motif */
  const char *why;    /* then why not ("no child depends on it", ...) */
  /* where its children are: event number (in run order) and element */
  int nev;            /* events of a run */
  int *unit_ev, *unit_el;
  int *unit_kind;     /* its kind's place in the signature ("a+b": 0 or 1) */
  int *unit_ck;       /* its kind (motif.c's ChildKind) */
  int own_choice;     /* the block is a choice of its own (one element) */
  int own_ev;         /* the event that draws it */
  /* its cells: one for a single element; 2..MOTIF_MAXCELLS for a block of
     binary choices (motif_blocks), whose value k is the configuration with
     cell i at lo + bit i of k (addr, elem, own_ev: cell 0's) */
  int ncell;
  const char **cell_addr;
  int *cell_elem, *cell_ev;
  /* motif_probe_batch: per value, the log densities of its children's
     events in run k (with lprior, the block's local log posterior there
     when the group's blankets separate) */
  double *lloc;
} MotifProbe;

/* Blocks of several cells (the paper's heuristic "a variable with its
 * children", for binary networks: a grid's 2 x 2 squares).  A cell is a
 * binary choice of its own (one element, two values) that is a motif; a
 * block grows from the first free cell in trace order by its free latent
 * children, then by free cells that are children of two of its cells
 * (a common child closes a square), then of one, up to MOTIF_MAXCELLS.
 * Its signature is "finite-block->" and its children's kinds, its values
 * the 2^m configurations (m is a parameter of the motif, as K is), its
 * proposal the per-value scorer over them: a softmax over the block's joint
 * values, drawn cell by cell (its autoregressive factors are its marginals).
 * motif_blocks fills blk[i] (the block of probe i, -1: none) for the
 * probed single cells p[0..n), blocks of up to maxcells cells, and returns
 * the number of blocks.  Engine lmh moves blocks when --cells says so (its
 * default is single cells, cheaper per effective draw on the grids
 * measured); ppl check lists the block motif beside the cells' own. */
#define MOTIF_MAXCELLS 4
#define MOTIF_BLOCK_PREFIX "finite-block->"
int motif_blocks(int n, const MotifProbe *p, int *blk, int maxcells);
/* Probe a block of ncell cells (cells of motif_blocks) of cur: 2^ncell runs. */
bool motif_probe_block(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                       int ncell, const MotifSite *cells, Rng *rng, MotifProbe *out, Diag *d);
/* The probe's block at value k as a TraceBlock on cur (log_q_ratio 0), and
 * the value the block has in cur (-1: none of the K). */
TraceBlock motif_probe_at(const MotifProbe *p, const Trace *cur, int k);
int motif_probe_value(const MotifProbe *p, const Trace *cur);

/* Blocks whose Markov blankets do not meet -- none is a child of another
 * and no two share a child -- take their features from K runs in all: run
 * k sets every block of the group to its k-th value, and a block's children
 * there are as if it alone had changed.  motif_groups colours the probed
 * blocks p[0..n) into such groups (greedily; group[b] = 0, 1, ...) and
 * returns their number; motif_probe_batch refreshes the features of one
 * group's probes (same K and values; and lprior when a block is a choice
 * of its own) from K runs on cur.  Whether or not the blankets meet, a
 * block's proposal then depends on the rest of the trace but on no value of
 * its group, its own included: each move is an exact independence MH move
 * (the grouping only makes the proposals good).  False + d on internal
 * errors; *ok false when a run failed or its events are not the probes'
 * (then probe block by block). */
int motif_groups(int n, const MotifProbe *p, int *group);
bool motif_probe_batch(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                       int n, MotifProbe *p, Rng *rng, bool *ok, Diag *d);

/* The blocks of a trace: every element of a discrete choice with a finite
 * support of 2..MOTIF_MAXK values (in trace order). */
int motif_sites(const Trace *t, MotifSite **out);

/* Probe the block (addr, elem) of the complete trace cur: the program
 * replayed (model block, seeded with model_seed, stream) with each value.
 * False only for internal errors (d filled); a block that is no supported
 * motif has out->sig NULL and out->why set. */
bool motif_probe(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                 const char *addr, int elem, Rng *rng, MotifProbe *out, Diag *d);

/* The motifs of a program: its blocks in one run from the prior (the first
 * of up to 100 with a finite log density), probed, grouped by signature. */
typedef struct MotifFound {
  const char *sig;
  int blocks;
  const char *first;  /* the first block's address, "z[3]" */
} MotifFound;
typedef struct MotifReport {
  int nsites;         /* blocks probed */
  int n;              /* distinct signatures */
  MotifFound *found;
  int nother;         /* blocks that are no motif */
  const char *other;  /* the first of them and why */
} MotifReport;
bool motif_detect(const Interp *in, uint64_t seed, MotifReport *out, Diag *d);

/* A proposal network of one signature (weights in a flat vector). */
typedef struct MotifNet {
  const char *sig;
  bool mdn;           /* a continuous block's mixture density network */
  NnMlp mlp;          /* E's nonlinear part: MOTIF_NFEAT -> hidden -> 1; mdn: phi */
  int nkinds;         /* kinds of children: one E (mlp's layout, own weights) each */
  NnMlp rho;          /* mdn: the pooled summary -> the mixture */
  size_t nparams;     /* nkinds (mlp.nparams + MOTIF_NFEAT (the linear term)); mdn: phi + rho */
  double *w;
  long steps;         /* training steps it had (0: random weights) */
  double loss;        /* its last training loss (NaN: none) */
} MotifNet;

/* Whether a signature is one this version can train and propose for; if not,
 * *why says why. */
bool motif_sig_supported(const char *sig, const char **why);
/* A network of sig with random weights drawn from r. */
bool motif_net_new(MotifNet *n, const char *sig, Rng *r, const char **err);
/* log q(k) for the K values of the probe into logq (normalised). */
bool motif_net_logq(const MotifNet *n, Tape *t, const MotifProbe *p, double *logq);

typedef struct MotifTrainOpts {
  long steps;         /* Adam steps (default 1500) */
  int batch;          /* simulated motifs per step (default 64) */
  double lr;          /* default 3e-3, cosine-decayed to lr / 20 */
  uint64_t seed;
  /* called every progress_every steps and at the end (NULL: none) */
  void (*progress)(void *ctx, const char *sig, long step, long steps, double loss);
  void *progress_ctx;
} MotifTrainOpts;
void motif_train_opts_default(MotifTrainOpts *o);
/* Train n (made by motif_net_new) in place by maximum likelihood of the
 * block given its blanket on simulations of its motif. */
bool motif_train(MotifNet *n, const MotifTrainOpts *o, const char **err);

/* ---- continuous blocks (motif_cont.c) ----
 *
 * A continuous block is one element of a real latent without bounds drawn
 * from a normal, x ~ normal(m0, s0); its children are found by probing as
 * for discrete blocks, with one replay at x + delta: every event whose
 * parameters move with it.  When every child is a normal whose location is
 * x itself (y ~ normal(x, sigma_j): a component mean and the points assigned
 * to it, a group mean and its members) the signature is
 * "normal->normal(mu)".  The proposal is a mixture density network: a
 * permutation-invariant summary of the children (a per-child network
 * phi, averaged, beside their count and precision-weighted statistics) read
 * by a network rho that gives MOTIF_MDN_K Gaussian components on the
 * block's scale (it is unbounded: the unconstrained scale is its own). */
#define MOTIF_MDN_K 3
typedef struct MotifCProbe {
  const char *addr;
  int elem;
  double x;           /* the current value */
  double m0, s0;      /* its prior's location and scale */
  int n;              /* children */
  double *y, *sg;     /* their values and scales */
  const char *sig;    /* NULL: no motif (why says why; empty when only for want of children) */
  const char *why;
  bool empty;         /* a normal block nothing depends on (in this trace) */
} MotifCProbe;
/* The signature of a continuous block nothing depends on (in some trace):
 * normal->normal(mu) with no children. */
const char *motif_cont_empty_sig(void);
/* Whether sig is that continuous signature. */
bool motif_cont_sig(const char *sig);
/* The real latents' elements that may be continuous blocks (in trace order). */
int motif_csites(const Trace *t, MotifSite **out);
/* Probe (addr, elem) of cur: two replays (unchanged, and at x + delta). */
bool motif_cprobe(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                  const char *addr, int elem, Rng *rng, MotifCProbe *out, Diag *d);
/* The blankets of n continuous blocks of cur at once, in two replays
 * (unchanged, and every block moved by a step of its own), where probing
 * them one by one takes n + 1: a child is block i's when its location moves
 * by block i's step.  *ok false (out unset) when the runs cannot say: a
 * block is not drawn from a normal, an event moves otherwise than by one
 * block's step (a child of two blocks, a scale or a factor that depends on
 * them), or the program's events or choices change.  Found so, every block
 * is normal->normal(mu), with children or empty.  A deterministic function
 * of the trace, so the same test on the trace before and after a move is a
 * symmetric veto (engine lmh's group move of continuous blocks). */
bool motif_cprobe_group(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                        int n, const MotifSite *site, Rng *rng, MotifCProbe *out, bool *ok, Diag *d);
/* The same blanket: prior, children and their values (bit for bit). */
bool motif_cprobe_same(const MotifCProbe *a, const MotifCProbe *b);
/* The proposal of a probed block: a Gaussian mixture on its scale. */
typedef struct MotifMix {
  double logw[MOTIF_MDN_K], mean[MOTIF_MDN_K], sd[MOTIF_MDN_K];
} MotifMix;
bool motif_net_mix(const MotifNet *n, Tape *t, const MotifCProbe *p, MotifMix *q);
double motif_mix_logq(const MotifMix *q, double x);
double motif_mix_draw(const MotifMix *q, Rng *r);

/* The file name of sig's proposal within a library directory. */
const char *motif_file_name(const char *sig);
bool motif_net_save(const MotifNet *n, const char *path, const char **err);
/* Read the proposal at path, which must be for signature sig (NULL: any):
 * "p.safetensors: a proposal for motif 'a', not 'b'". */
bool motif_net_load(const char *path, const char *sig, MotifNet *n, const char **err);

/* The library directory when none is given: $XDG_DATA_HOME/ppl/proposals,
 * else $HOME/.local/share/ppl/proposals (NULL when neither is set). */
const char *motif_default_dir(void);

/* A library directory's networks, read on first use by signature. */
typedef struct MotifLib MotifLib;
MotifLib *motif_lib_open(const char *dir);
/* The network of sig, or NULL when the library has none; a file that is
 * there but unreadable or for another signature is an error (*err). */
const MotifNet *motif_lib_get(MotifLib *l, const char *sig, const char **err);

/* ---- engine lmh (lmh.c) ---- */

/* Whether a program (its data loaded) should run with engine lmh: every
 * motif of it has a trained proposal in the library dir (NULL: the default
 * location) and there is at least one.  *why then gives the reason
 * ("lmh — 12 blocks of motif finite->normal(mu) have trained proposals in
 * DIR: ..."). False with d unset when not; with d set on errors. */
bool lmh_prefers(const Interp *in, const char *dir, const char **why, Diag *d);

#endif
