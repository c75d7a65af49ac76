/* deepset.h — a summary network for data with exchangeable parts, on the
 * tensor tape: neural posterior estimation's s(x) (inference/npe.c).
 *
 * The input is G groups of exchangeable elements (group g: n[g] elements of
 * width[g] reals each, e.g. a plate's (y[i], x[i])) and `rest` reals that
 * are not exchangeable.  Each group goes through a deep set (Zaheer et al.
 * 2017): a per-element MLP phi_g (width -> hidden -> hidden, relu), the mean
 * over the elements, so the summary does not depend on their order; the
 * pooled vectors and the rest then go through one MLP rho (-> hidden ->
 * out).  With no groups this is a plain MLP over the rest.
 *
 * With `quadratic`, phi sees each element's reals and their pairwise
 * products (x_i x_j, i <= j): the pooled means then include the second
 * moments that are the sufficient statistics of linear-Gaussian models
 * (X'y and X'X of a regression's rows), which a small relu network does not
 * learn to multiply out by itself.
 *
 * Mean pooling also makes the weights independent of n: a network trained
 * with n elements runs on data with another n (ds_make with the new sizes
 * and the same weights), though what it learnt is for the n it saw.
 *
 * The weights are one flat vector (nn.h's layout): phi_0, ..., phi_{G-1},
 * then rho.
 */
#ifndef PPL_DEEPSET_H
#define PPL_DEEPSET_H

#include <stdbool.h>
#include <stddef.h>

#include "nn.h"
#include "rng.h"
#include "tensor.h"

#define DS_MAXGROUPS 8

typedef struct DeepSet {
  int ngroups;
  int n[DS_MAXGROUPS];     /* elements of group g */
  int width[DS_MAXGROUPS]; /* reals per element */
  int feat[DS_MAXGROUPS];  /* phi's inputs per element: width, + width (width + 1) / 2 */
  bool quadratic;
  int rest;                /* reals outside the groups */
  int hidden, out;
  size_t in;               /* reals of one input row: sum of n * width, plus rest */
  NnMlp phi[DS_MAXGROUPS];
  size_t phi_off[DS_MAXGROUPS];
  NnMlp rho;
  size_t rho_off;
  size_t nparams;
} DeepSet;

/* Fill s; false with a message for no input at all, more than DS_MAXGROUPS
 * groups, or sizes < 1. */
bool ds_make(DeepSet *s, int ngroups, const int *n, const int *width, int rest, int hidden,
             int out, bool quadratic, char *err, size_t errsz);
/* Initial weights (s->nparams reals): nn_mlp_init's. */
void ds_init(const DeepSet *s, Rng *r, double *w);
/* The summaries of B input rows (B * s->in constants, each row: group 0's
 * elements one after another, then group 1's, ..., then the rest): [B, out].
 * w as nn_mlp_forward takes it (tensor_var to train, tensor_const to run). */
Tensor ds_forward(Tape *t, const DeepSet *s, Tensor w, int B, const double *rows);
/* ds_forward off the tape, for embedding data with trained weights: the
 * same products and sums (the same bits as ds_forward with constant
 * weights), no allocation.  w is s->nparams reals, out [B, s->out]; work
 * holds ds_work(s, B) doubles. */
size_t ds_work(const DeepSet *s, int B);
void ds_eval(const DeepSet *s, const double *w, int B, const double *rows, double *out,
             double *work);
/* What phi reads of one element el of group g: its width[g] reals, then
 * (quadratic) their products x_i x_j for i <= j; feat[g] reals in f. */
void ds_features(const DeepSet *s, int g, const double *el, double *f);
/* The pooled features of one input row, before any network: each group's
 * mean of ds_features over its elements, then the rest (ds_pooled_size
 * reals). */
int ds_pooled_size(const DeepSet *s);
void ds_pooled(const DeepSet *s, const double *row, double *out);

#endif
